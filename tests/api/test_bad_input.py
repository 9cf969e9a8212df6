"""Hostile or odd input answers 400 with the API's JSON error, never a 500."""

from __future__ import annotations

import pytest

from tests.fixtures.api import API

pytestmark = pytest.mark.django_db


def test_deeply_nested_json_is_a_400(api, mastodon_channel):
    body = '{"channels": [' + "[" * 100_000 + "]" * 100_000 + "]}"

    response = api.post(f"{API}/posts", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert "nested" in response.json()["error"]["message"]


@pytest.mark.parametrize("key", ["²", "٣", "1" * 40, "-1"])
def test_an_override_key_that_is_not_a_channel_id_is_a_400(api, mastodon_channel, key):
    response = api.post(
        f"{API}/posts",
        {
            "channels": [mastodon_channel.pk],
            "text": "x",
            "when": "now",
            "overrides": {key: {"parts": [{"text": "y"}]}},
        },
        format="json",
    )

    assert response.status_code == 400
    assert "overrides" in response.json()["error"]["details"]["fields"]


def test_a_channel_id_too_large_for_the_database_is_a_400(api):
    response = api.post(
        f"{API}/posts", {"channels": [10**30], "text": "x", "when": "now"}, format="json"
    )

    assert response.status_code == 400

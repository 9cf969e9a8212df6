"""The schema says exactly what the server does: the cases a randomized schemathesis run found."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from scheduler.models import Channel, Media
from tests.fixtures.api import API, png_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema():
    return APIClient().get(f"{API}/schema/?format=json").json()


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_every_post_taking_an_idempotency_key_declares_the_reused_key_answer(schema):
    for path, method, operation in _operations(schema):
        names = [p["name"] for p in operation.get("parameters", [])]
        if "Idempotency-Key" in names:
            assert "422" in operation["responses"], (method, path)


def test_text_and_parts_are_declared_mutually_exclusive(schema, api, mastodon_channel):
    for name in ("PostCreateRequest", "PatchedPostUpdateRequest"):
        assert schema["components"]["schemas"][name]["not"] == {"required": ["text", "parts"]}
    both = {
        "channels": [mastodon_channel.pk],
        "when": "now",
        "text": "a",
        "parts": [{"text": "b"}],
    }
    response = api.post(f"{API}/posts", both, format="json")
    assert response.status_code == 400
    assert "parts" in response.json()["error"]["details"]["fields"]


def test_an_empty_cursor_is_outside_the_schema_and_refused(schema, api):
    for path, _method, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "cursor":
                assert parameter["schema"]["minLength"] == 1, path
    assert api.get(f"{API}/channels?cursor=").status_code == 400


def test_media_alt_text_must_be_a_string(api):
    media_id = api.post(f"{API}/media", {"file": png_upload()}).json()["id"]

    for wrong in (42, ["a"], None, True):
        response = api.patch(f"{API}/media/{media_id}", {"alt_text": wrong}, format="json")
        assert response.status_code == 400, wrong
    assert Media.objects.get(pk=media_id).alt_text == ""
    unchanged = api.patch(f"{API}/media/{media_id}", {}, format="json")
    assert unchanged.status_code == 200
    changed = api.patch(f"{API}/media/{media_id}", {"alt_text": "A pixel"}, format="json")
    assert changed.json()["alt_text"] == "A pixel"


def test_media_alt_text_longer_than_the_schema_allows_is_refused_even_if_it_trims_shorter(api):
    media_id = api.post(f"{API}/media", {"file": png_upload()}).json()["id"]

    padded = " " + "r" * 5000  # 5,001 characters sent; 5,000 after trimming
    response = api.patch(f"{API}/media/{media_id}", {"alt_text": padded}, format="json")

    assert response.status_code == 400
    assert Media.objects.get(pk=media_id).alt_text == ""


def test_channel_paused_must_be_a_json_boolean(api, mastodon_channel):
    for wrong in ("yes", 1, "true"):
        response = api.patch(
            f"{API}/channels/{mastodon_channel.pk}", {"paused": wrong}, format="json"
        )
        assert response.status_code == 400, wrong
    assert Channel.objects.get(pk=mastodon_channel.pk).status == "active"


def test_an_access_token_with_spaces_is_refused_before_any_network_call(api, fake_mastodon):
    body = {"network": "mastodon", "server_url": fake_mastodon.url, "access_token": "a b\n"}

    response = api.post(f"{API}/channels", body, format="json")

    assert response.status_code == 400
    assert "access_token" in response.json()["error"]["details"]["fields"]
    assert not fake_mastodon.requests_to("GET", r"^/api/v1/accounts/verify_credentials")


def test_an_undeclared_method_is_a_declared_405(schema, api):
    assert "put" not in schema["paths"][f"{API}/media"]
    assert "405" in schema["paths"][f"{API}/media"]["post"]["responses"]

    response = api.put(f"{API}/media", {}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response["Allow"]


def test_connect_serializers_come_from_the_registry_with_a_discriminator(schema):
    connect = schema["components"]["schemas"]["ChannelConnectRequest"]
    assert set(connect["discriminator"]["mapping"]) == {"mastodon", "bluesky", "threads"}


def test_an_undeclared_method_with_a_query_is_still_405(api, mastodon_channel):
    response = api.generic("TRACE", f"{API}/channels?cursor=0&limit=1")

    assert response.status_code == 405

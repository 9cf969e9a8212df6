"""Odd ids in forms and query strings: dropped (a form error where one is needed), never a 500."""

from __future__ import annotations

import pytest

from scheduler.models import Post
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ODD_IDS = ["abc", "²", "1" * 40, "-1", ""]


@pytest.fixture
def browser(client, alice):
    client.login(email=alice.email, password=PASSWORD)
    return client


@pytest.mark.parametrize("value", ODD_IDS)
def test_the_composer_drops_odd_channel_ids(browser, mastodon_channel, value):
    fields = {"part-0-text": "x", "when": "now", "draft_id": value, "part-0-media": value}

    response = browser.post("/compose/", {"channels": [value], **fields})

    assert response.status_code == 400
    assert "Choose at least one channel" in response.content.decode()
    assert not Post.objects.exists()
    assert browser.get(f"/compose/?channel={value}").status_code == 200


@pytest.mark.parametrize("value", ODD_IDS)
def test_lists_and_bulk_actions_drop_odd_ids(browser, mastodon_channel, value):
    assert browser.get(f"/calendar/?channel={value}").status_code == 200
    assert browser.get(f"/?channel={value}").status_code == 200
    assert browser.post("/notifications/read/", {"id": value}).status_code in (200, 302)
    assert browser.post("/posts/bulk/", {"post": [value], "action": "retry"}).status_code in (
        200,
        302,
    )

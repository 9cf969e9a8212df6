"""The web composer with bad input: a form error (400), nothing kept, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from scheduler.models import Media, Post
from tests.conftest import PASSWORD
from tests.fixtures.api import png_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, alice):
    client.login(email=alice.email, password=PASSWORD)
    return client


def media_files() -> set[Path]:
    root = Path(settings.MEDIA_ROOT)
    return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()


@pytest.mark.parametrize("channels", [["abc"], ["1" * 40], ["999999"]])
def test_channel_ids_that_are_not_the_workspaces_are_a_form_error(
    browser, mastodon_channel, channels
):
    response = browser.post("/compose/", {"channels": channels, "text": "x", "when": "now"})

    assert response.status_code == 400
    assert response.context["errors"]["channels"]
    assert not Post.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"channels": ["abc"], "text": "x", "when": "now"},  # refused before the upload
        {"channels": [], "text": "no channel chosen", "when": "now"},  # create_post refuses
        {"text": "x" * 600, "when": "now"},  # too long for Mastodon
        {"text": "x", "when": "at", "scheduled_at": "someday"},
    ],
)
def test_a_failed_compose_keeps_no_upload(browser, mastodon_channel, fields):
    fields = {"channels": [mastodon_channel.pk], **fields}
    before = media_files()

    response = browser.post("/compose/", {**fields, "media": png_upload(), "alt_text": "A dot"})

    assert response.status_code == 400
    assert not Media.objects.exists()
    assert media_files() == before


def test_a_successful_compose_keeps_its_upload(browser, mastodon_channel):
    fields = {"channels": [mastodon_channel.pk], "text": "x", "when": "draft"}

    response = browser.post("/compose/", {**fields, "media": png_upload(), "alt_text": "A dot"})

    assert response.status_code == 302
    media = Media.objects.get()
    assert Path(media.file.path).exists()

"""The composer's server side: the check request counts as the networks validate; drafts."""

from __future__ import annotations

import pytest

from scheduler.models import Post, PostStatus
from tests.fixtures.bluesky import make_bluesky_channel

pytestmark = pytest.mark.django_db

URL = "https://example.com/" + "a" * 60


def test_check_counts_each_part_the_way_each_network_validates(
    alice_client, membership, mastodon_channel, fake_pds
):
    bluesky = make_bluesky_channel(membership.workspace, fake_pds)
    response = alice_client.post(
        "/compose/check/",
        {
            "channels": [mastodon_channel.pk, bluesky.pk],
            "part-0-text": f"Read {URL}",
            "part-1-text": "🇺🇦" + "é" * 300,
        },
    )

    body = response.json()
    counts = {c["network"]: c["parts"] for c in body["channels"]}
    assert counts["mastodon"][0] == {"count": 5 + 23, "limit": 500, "over": 0}  # a URL weighs 23
    assert counts["bluesky"][0]["count"] == 5 + len(URL)
    assert counts["bluesky"][1] == {"count": 301, "limit": 300, "over": 1}
    problems = {c["network"]: c["problems"] for c in body["channels"]}
    assert any("Part 2 is 301 characters" in p for p in problems["bluesky"])
    assert problems["mastodon"] == []
    assert "preview-bluesky" in body["previews"]
    assert len(body["split"]["1"]) == 2


def test_split_suggestion_cuts_at_sentence_ends_within_every_limit(
    alice_client, membership, fake_pds
):
    bluesky = make_bluesky_channel(membership.workspace, fake_pds)
    text = " ".join(f"Sentence number {n} is here." for n in range(30))
    body = alice_client.post(
        "/compose/check/", {"channels": [bluesky.pk], "part-0-text": text}
    ).json()

    pieces = body["split"]["0"]
    assert " ".join(pieces) == text
    assert all(len(p) <= 300 and p.endswith(".") for p in pieces)


def test_autosave_creates_then_updates_one_draft(alice_client, mastodon_channel):
    first = alice_client.post(
        "/compose/autosave/", {"channels": [mastodon_channel.pk], "part-0-text": "Draft one"}
    ).json()
    second = alice_client.post(
        "/compose/autosave/",
        {"draft_id": first["draft_id"], "part-0-text": "Draft two", "part-1-text": "More"},
    ).json()

    post = Post.objects.get()
    assert first["draft_id"] == second["draft_id"] == post.pk
    assert post.status == PostStatus.DRAFT
    assert [p.text for p in post.parts.all()] == ["Draft two", "More"]
    assert not post.deliveries.exists()  # the channel was unticked in the second save


def test_editing_shows_the_time_in_the_readers_zone(
    alice_client, alice, membership, mastodon_channel
):
    import zoneinfo
    from datetime import datetime

    from tests.conftest import schedule

    alice.timezone = "Asia/Tokyo"
    alice.save()
    due = datetime(2030, 5, 1, 0, 30, tzinfo=zoneinfo.ZoneInfo("UTC"))
    post = schedule(membership, [mastodon_channel], "Morning in Tokyo", at=due)

    page = alice_client.get(f"/posts/{post.pk}/edit/").content.decode()

    assert 'name="scheduled_at" value="2030-05-01T09:30"' in page
    assert 'Keep its time <span class="muted">(Wed 1 May 2030, 09:30 JST)</span>' in page

"""Editing posts never mixes old and new content on a network."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.compose import PartInput, PostNotEditable, update_post
from scheduler.models import DeliveryStatus
from tests.conftest import schedule, tick_and_publish

pytestmark = pytest.mark.django_db

STATUSES = r"^/api/v1/statuses$"


def test_edit_of_a_post_waiting_out_a_rate_limit_is_what_goes_out(
    membership, mastodon_channel, fake_mastodon
):
    post = schedule(membership, [mastodon_channel], "Old text with a typo")
    fake_mastodon.rate_limit(30)
    assert tick_and_publish() == ["rate_limited"]
    assert post.deliveries.get().part_states[0]["handle"]  # built from the old text

    result = update_post(membership, post, parts=[PartInput("New text, fixed")])

    assert [d.pk for d in result.changed] == [post.deliveries.get().pk]
    assert post.deliveries.get().part_states == []
    assert tick_and_publish(timezone.now() + timedelta(seconds=40)) == ["published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["New text, fixed"]


def test_thread_with_a_live_part_cannot_be_edited(
    membership, mastodon_channel, fake_mastodon, settings
):
    settings.HERALD_BACKOFF_BASE = 0.01
    post = schedule(membership, [mastodon_channel], "one", "two")
    fake_mastodon.inject("POST", STATUSES)  # part one goes out
    fake_mastodon.inject("POST", STATUSES, status=503)  # part two waits to retry
    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.SCHEDULED

    with pytest.raises(PostNotEditable):
        update_post(membership, post, parts=[PartInput("a single new post")])

    assert tick_and_publish(timezone.now() + timedelta(seconds=5)) == ["published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["one", "two"]


def test_send_with_unknown_outcome_blocks_edits(membership, mastodon_channel, fake_mastodon):
    post = schedule(membership, [mastodon_channel], "Maybe sent")
    fake_mastodon.inject("POST", STATUSES, reset_after_handling=True)
    assert tick_and_publish() == ["retry"]

    with pytest.raises(PostNotEditable):
        update_post(membership, post, parts=[PartInput("Changed my mind")])

"""End to end: a real Celery worker and beat publish a scheduled post to the fake Mastodon."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.models import DeliveryStatus
from tests.conftest import make_mastodon_channel, schedule

pytestmark = pytest.mark.e2e


def test_scheduled_post_lands_on_mastodon_on_time_exactly_once(
    celery_processes, membership, fake_mastodon
):
    channel = make_mastodon_channel(membership.workspace, fake_mastodon)
    due = (timezone.now() + timedelta(seconds=4)).replace(microsecond=0)
    post = schedule(membership, [channel], "Hello from the real worker", "and a reply", at=due)
    delivery = post.deliveries.get()

    celery_processes.wait_for(
        lambda: delivery.__class__.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.PUBLISHED
        ).exists(),
        timeout=30,
        what="the delivery to be published",
    )
    time.sleep(3)  # a few more ticks run; none may publish it again

    delivery.refresh_from_db()
    assert [s["text"] for s in fake_mastodon.statuses] == [
        "Hello from the real worker",
        "and a reply",
    ]
    assert fake_mastodon.statuses[1]["in_reply_to_id"] == fake_mastodon.statuses[0]["id"]
    assert delivery.published_at >= due  # never early
    first_request = fake_mastodon.requests_to("POST", r"^/api/v1/statuses$")[0]
    assert (
        first_request.header("Idempotency-Key")
        == delivery.part_states[0]["handle"]["idempotency_key"]
    )
    print(f"lateness: {(delivery.published_at - due).total_seconds():.3f} s")

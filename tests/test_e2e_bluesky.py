"""End to end: a real Celery worker and beat publish a scheduled thread to the fake PDS."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from atproto_client.client.session import Session
from django.utils import timezone

from scheduler.models import Channel, Delivery, DeliveryStatus
from tests.conftest import schedule
from tests.fixtures.bluesky import image_bytes, make_bluesky_channel

pytestmark = pytest.mark.e2e


def test_scheduled_thread_lands_on_bluesky_on_time_exactly_once(
    celery_processes, membership, fake_pds, page_server
):
    channel = make_bluesky_channel(membership.workspace, fake_pds)
    old_session = Session.decode(channel.credentials["session"])
    page_server.image("/cover.jpg", image_bytes(600, 315, fmt="JPEG"))
    link = page_server.og_page("/launch", title="Launch", image="/cover.jpg")
    # The access token expired on the PDS while Herald was idle: the worker must refresh the
    # session (ExpiredToken is a 400) and store the new one for the next task.
    fake_pds.advance(3 * 3600)
    due = (timezone.now() + timedelta(seconds=4)).replace(microsecond=0)
    post = schedule(membership, [channel], f"We launched 🚀 {link}", "Thanks @alice.test!", at=due)
    delivery = post.deliveries.get()

    celery_processes.wait_for(
        lambda: Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PUBLISHED).exists(),
        timeout=30,
        what="the delivery to be published",
    )
    time.sleep(3)  # a few more ticks run; none may publish it again

    delivery.refresh_from_db()
    first, second = sorted(fake_pds.posts, key=lambda p: p.created_at)
    assert len(fake_pds.posts) == 2
    assert first.value["embed"]["external"]["title"] == "Launch"
    assert first.value["embed"]["external"]["thumb"]["mimeType"] == "image/jpeg"
    assert second.value["reply"]["root"] == second.value["reply"]["parent"]
    assert second.value["reply"]["parent"]["uri"] == first.uri
    assert second.value["reply"]["parent"]["cid"] == first.cid
    assert [s["handle"]["rkey"] for s in delivery.part_states] == [first.rkey, second.rkey]
    assert delivery.published_at >= due  # never early
    assert fake_pds.session_creations["alice.test"] == 1  # the fixture's sign-in only
    stored = Session.decode(Channel.objects.get(pk=channel.pk).credentials["session"])
    assert stored.refresh_jwt != old_session.refresh_jwt  # the worker's refresh was persisted
    print(f"lateness: {(delivery.published_at - due).total_seconds():.3f} s")

"""Short leases renewed by the worker that holds the claim; lost work is taken over in seconds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from scheduler import dispatch, leases
from scheduler.models import Delivery, DeliveryAttempt, DeliveryStatus
from scheduler.publishing import publish_delivery
from tests.conftest import run_at_once, schedule

pytestmark = pytest.mark.django_db


def _claim(post) -> Any:  # type: ignore[no-untyped-def]
    claims: list[Any] = []
    dispatch.run_tick(enqueue=claims.extend)
    assert [c.delivery_id for c in claims] == [post.deliveries.get().pk]
    return claims[0]


@pytest.mark.django_db(transaction=True)
def test_two_tasks_for_one_claim_publish_one_status(membership, mastodon_channel, fake_mastodon):
    """A broker redelivery or a duplicate enqueue: both tasks start at once; one post."""
    post = schedule(membership, [mastodon_channel], "Only once")
    claim = _claim(post)
    fake_mastodon.latency = 0.3  # both runs are in flight together
    outcomes = run_at_once(lambda: publish_delivery(claim.delivery_id, claim_token=claim.token))

    assert sorted(outcomes) == ["published", "stale"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["Only once"]
    assert [a.outcome for a in DeliveryAttempt.objects.all()] == ["published"]


def test_claim_whose_task_never_arrived_is_enqueued_again_after_the_grace(
    membership, mastodon_channel, fake_mastodon, settings
):
    settings.HERALD_START_GRACE = 10
    post = schedule(membership, [mastodon_channel], "Lost by the broker")
    lost = _claim(post)  # enqueued into a broker that then lost it
    now = timezone.now()

    assert dispatch.run_tick(now + timedelta(seconds=8), enqueue=lambda c: None).reclaimed == []
    again: list[Any] = []
    dispatch.run_tick(now + timedelta(seconds=12), enqueue=again.extend)

    assert [c.delivery_id for c in again] == [lost.delivery_id]
    assert publish_delivery(lost.delivery_id, claim_token=again[0].token) == "published"
    # The lost task turning up late does nothing.
    assert publish_delivery(lost.delivery_id, claim_token=lost.token) == "stale"
    assert [s["text"] for s in fake_mastodon.statuses] == ["Lost by the broker"]


def test_held_claim_is_renewed_and_not_taken_over(membership, mastodon_channel, settings):
    settings.HERALD_LEASE_SECONDS = 30
    post = schedule(membership, [mastodon_channel], "Waiting in a busy worker")
    claim = _claim(post)
    Delivery.objects.filter(pk=claim.delivery_id).update(
        claimed_until=timezone.now() + timedelta(seconds=1)
    )
    leases.hold(claim.token)
    try:
        assert leases.renew_held() == 1
        later = timezone.now() + timedelta(seconds=20)
        assert dispatch.run_tick(later, enqueue=lambda c: None).reclaimed == []
    finally:
        leases.release(claim.token)
    delivery = post.deliveries.get()
    assert delivery.claim_token == claim.token
    assert delivery.claimed_until > timezone.now() + timedelta(seconds=25)


def test_claims_no_longer_held_in_the_database_are_forgotten(membership, mastodon_channel):
    post = schedule(membership, [mastodon_channel], "Finished elsewhere")
    claim = _claim(post)
    leases.hold(claim.token)
    Delivery.objects.filter(pk=claim.delivery_id).update(
        status=DeliveryStatus.PUBLISHED, claim_token=None
    )

    assert leases.renew_held() == 0
    assert claim.token not in leases.held()


def test_a_claim_held_past_the_task_time_limit_is_let_go(
    membership, mastodon_channel, settings, monkeypatch
):
    post = schedule(membership, [mastodon_channel], "Hung thread")
    claim = _claim(post)
    Delivery.objects.filter(pk=claim.delivery_id).update(claimed_until=timezone.now())
    leases.hold(claim.token)
    settings.CELERY_TASK_TIME_LIMIT = -1  # held for longer than the limit
    try:
        assert leases.renew_held() == 0
    finally:
        leases.release(claim.token)


def test_nothing_is_reclaimed_while_the_broker_still_holds_unfetched_tasks(
    membership, mastodon_channel, settings
):
    """A burst bigger than the workers take in at once: the claim is waiting in the queue."""
    settings.HERALD_START_GRACE = 10
    post = schedule(membership, [mastodon_channel], "Still queued")
    claim = _claim(post)
    later = timezone.now() + timedelta(seconds=12)

    queued = dispatch.run_tick(later, enqueue=lambda c: None, backlog=lambda: 3)
    assert queued.reclaimed == []
    drained = dispatch.run_tick(later, enqueue=lambda c: None, backlog=lambda: 0)
    assert [c.delivery_id for c in drained.reclaimed] == [claim.delivery_id]


@pytest.mark.django_db(transaction=True)
def test_broker_backlog_counts_the_tasks_waiting_in_redis(settings):
    from config.celery import app
    from scheduler.tasks import broker_backlog, verify_channel

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
    assert broker_backlog() == 0
    verify_channel.delay(0)
    verify_channel.delay(0)
    assert broker_backlog() == 2
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)


def test_losing_the_broker_lets_go_of_waiting_claims_only():
    import uuid

    waiting, running, started = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    leases.hold(waiting, waiting=True)
    leases.hold(started, waiting=True)
    leases.started(started)  # its task began: it renews its own run's claim from here
    leases.hold(running)  # a publish in progress
    try:
        assert leases.release_waiting() == 1
        assert waiting not in leases.held()
        assert {running, started} <= set(leases.held())
    finally:
        leases.release(waiting, running, started)

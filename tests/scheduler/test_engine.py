"""The publishing engine against the fake Mastodon: exactly once, never lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from scheduler import dispatch, states
from scheduler.compose import cancel_post, retry_delivery, share_now
from scheduler.models import ChannelStatus, Delivery, DeliveryAttempt, DeliveryStatus
from scheduler.publishing import publish_delivery
from tests.conftest import make_mastodon_channel, run_at_once, schedule, tick_and_publish

pytestmark = pytest.mark.django_db


def test_due_post_is_published_once(membership, mastodon_channel, fake_mastodon):
    post = schedule(membership, [mastodon_channel], "Hello fediverse")

    assert tick_and_publish() == ["published"]

    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.PUBLISHED
    assert [s["text"] for s in fake_mastodon.statuses] == ["Hello fediverse"]
    assert delivery.part_states[0]["remote_id"] == fake_mastodon.statuses[0]["id"]
    assert delivery.remote_urls == [fake_mastodon.statuses[0]["url"]]
    assert (
        fake_mastodon.statuses[0]["idempotency_key"]
        == delivery.part_states[0]["handle"]["idempotency_key"]
    )
    assert tick_and_publish() == []  # nothing left to do
    assert len(fake_mastodon.statuses) == 1


def test_post_not_yet_due_is_not_published(membership, mastodon_channel, fake_mastodon):
    schedule(membership, [mastodon_channel], "Later", at=timezone.now() + timedelta(minutes=5))

    assert tick_and_publish() == []
    assert fake_mastodon.statuses == []


def test_post_due_within_claim_ahead_is_claimed_with_its_eta(
    membership, mastodon_channel, settings
):
    settings.HERALD_CLAIM_AHEAD = 5
    due = timezone.now() + timedelta(seconds=3)
    post = schedule(membership, [mastodon_channel], "Soon", at=due)

    claims: list[Any] = []
    dispatch.run_tick(enqueue=claims.extend)

    assert [c.eta for c in claims] == [due]
    assert post.deliveries.get().status == DeliveryStatus.PUBLISHING


def test_cancelled_post_is_not_published(membership, mastodon_channel, fake_mastodon):
    post = schedule(membership, [mastodon_channel], "Never mind")
    assert cancel_post(post) == 1

    assert tick_and_publish() == []
    assert fake_mastodon.statuses == []
    assert post.deliveries.get().status == DeliveryStatus.CANCELLED


def test_stale_claim_token_does_nothing(membership, mastodon_channel, fake_mastodon):
    post = schedule(membership, [mastodon_channel], "Hi")
    claims: list[Any] = []
    dispatch.run_tick(enqueue=claims.extend)
    import uuid

    assert publish_delivery(claims[0].delivery_id, claim_token=uuid.uuid4()) == "stale"
    assert fake_mastodon.statuses == []
    assert post.deliveries.get().status == DeliveryStatus.PUBLISHING


def test_thread_is_published_as_self_replies(membership, mastodon_channel, fake_mastodon):
    post = schedule(membership, [mastodon_channel], "1/3 start", "2/3 middle", "3/3 end")

    assert tick_and_publish() == ["published"]

    first, second, third = fake_mastodon.statuses
    assert [s["text"] for s in (first, second, third)] == ["1/3 start", "2/3 middle", "3/3 end"]
    assert first["in_reply_to_id"] is None
    assert second["in_reply_to_id"] == first["id"]
    assert third["in_reply_to_id"] == second["id"]
    assert "@alice" not in second["text"]  # status_post, not status_reply
    assert len(post.deliveries.get().remote_urls) == 3


def test_thread_resumes_after_crash_at_part_two_without_reposting_part_one(
    membership, mastodon_channel, fake_mastodon, settings
):
    settings.HERALD_LEASE_SECONDS = 60
    post = schedule(membership, [mastodon_channel], "part one", "part two", "part three")
    calls = {"n": 0}

    from scheduler.networks import mastodon as mastodon_network

    real_post = mastodon_network.Mastodon.status_post

    def dying_status_post(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("worker killed mid-publish")
        return real_post(self, *args, **kwargs)

    mastodon_network.Mastodon.status_post = dying_status_post
    try:
        with pytest.raises(KeyboardInterrupt):
            tick_and_publish()
    finally:
        mastodon_network.Mastodon.status_post = real_post
    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.PUBLISHING
    assert delivery.part_states[0]["remote_id"]
    assert delivery.part_states[1]["in_flight"] is True

    # The lease expires; the next tick reclaims and the publish resumes at part two.
    later = timezone.now() + timedelta(seconds=120)
    assert tick_and_publish(later) == ["published"]

    assert [s["text"] for s in fake_mastodon.statuses] == ["part one", "part two", "part three"]
    second = fake_mastodon.statuses[1]
    assert second["in_reply_to_id"] == fake_mastodon.statuses[0]["id"]


def test_reset_after_status_stored_is_reconciled_without_duplicate(
    membership, mastodon_channel, fake_mastodon, settings
):
    settings.HERALD_BACKOFF_BASE = 0.01
    post = schedule(membership, [mastodon_channel], "Only once please")
    fake_mastodon.inject("POST", r"^/api/v1/statuses$", reset_after_handling=True)

    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.SCHEDULED
    assert delivery.last_error_code == "network_error"
    assert delivery.part_states[0]["in_flight"] is True
    assert len(fake_mastodon.statuses) == 1  # it did reach Mastodon

    assert tick_and_publish(timezone.now() + timedelta(seconds=5)) == ["published"]
    assert len(fake_mastodon.statuses) == 1
    delivery.refresh_from_db()
    assert delivery.part_states[0]["remote_id"] == fake_mastodon.statuses[0]["id"]
    assert delivery.attempt_log.count() == 2


def test_unknown_outcome_after_idempotency_window_is_found_in_recent_statuses(
    membership, mastodon_channel, fake_mastodon, settings
):
    post = schedule(membership, [mastodon_channel], "Found later")
    fake_mastodon.inject("POST", r"^/api/v1/statuses$", reset_after_handling=True)
    assert tick_and_publish() == ["retry"]
    # Two hours pass: Mastodon has forgotten the Idempotency-Key.
    fake_mastodon.advance_clock(7200)
    delivery = post.deliveries.get()
    handle = delivery.part_states[0]["handle"]
    handle["created_at"] = (timezone.now() - timedelta(hours=2)).isoformat()
    Delivery.objects.filter(pk=delivery.pk).update(part_states=delivery.part_states)

    assert tick_and_publish(timezone.now() + timedelta(hours=1)) == ["published"]
    assert len(fake_mastodon.statuses) == 1


def test_expired_lease_after_request_reached_network_publishes_one_status(
    membership, mastodon_channel, fake_mastodon, settings
):
    """A worker stalls after its request reached Mastodon; another takes over; one status."""
    settings.HERALD_LEASE_SECONDS = 30
    post = schedule(membership, [mastodon_channel], "Stalled worker")
    claims: list[Any] = []
    dispatch.run_tick(enqueue=claims.extend)
    delivery = post.deliveries.get()
    first_claim = claims[0]

    from scheduler.networks import mastodon as mastodon_network

    real_post = mastodon_network.Mastodon.status_post
    takeover: dict[str, Any] = {}

    def stall_then_lose_lease(self, *args, **kwargs):
        status = real_post(self, *args, **kwargs)  # reached Mastodon, status stored
        # ...and while this worker is stalled the lease expires and another tick reclaims.
        later = timezone.now() + timedelta(seconds=60)
        takeover["claims"] = []
        dispatch.run_tick(later, enqueue=takeover["claims"].extend)
        mastodon_network.Mastodon.status_post = real_post
        takeover["outcomes"] = [
            publish_delivery(c.delivery_id, claim_token=c.token) for c in takeover["claims"]
        ]
        return status

    mastodon_network.Mastodon.status_post = stall_then_lose_lease
    try:
        outcome = publish_delivery(first_claim.delivery_id, claim_token=first_claim.token)
    finally:
        mastodon_network.Mastodon.status_post = real_post

    assert takeover["outcomes"] == ["published"]
    assert outcome == "lease_lost"
    assert len(fake_mastodon.statuses) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PUBLISHED
    assert delivery.part_states[0]["remote_id"] == fake_mastodon.statuses[0]["id"]


def test_rate_limit_reschedules_at_the_reset_time(membership, mastodon_channel, fake_mastodon):
    post = schedule(membership, [mastodon_channel], "Rate limited")
    fake_mastodon.rate_limit(120)

    before = timezone.now()
    assert tick_and_publish() == ["rate_limited"]

    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.SCHEDULED
    assert delivery.last_error_code == "rate_limited"
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 115 <= wait <= 125
    assert "try again at" in delivery.error_message()
    assert tick_and_publish() == []  # not before the reset
    assert tick_and_publish(timezone.now() + timedelta(seconds=130)) == ["published"]
    assert len(fake_mastodon.statuses) == 1


def test_server_error_retries_with_backoff_then_fails_with_last_error(
    membership, mastodon_channel, fake_mastodon, settings
):
    settings.HERALD_MAX_ATTEMPTS = 3
    settings.HERALD_BACKOFF_BASE = 10
    post = schedule(membership, [mastodon_channel], "Flaky server")
    fake_mastodon.inject("POST", r"^/api/v1/statuses$", status=503, times=3)

    now = timezone.now()
    assert tick_and_publish(now) == ["retry"]
    delivery = post.deliveries.get()
    first_wait = (delivery.next_attempt_at - now).total_seconds()
    assert 7 <= first_wait <= 13  # 10 s with jitter
    assert tick_and_publish(now + timedelta(seconds=15)) == ["retry"]
    delivery.refresh_from_db()
    second_wait = (delivery.next_attempt_at - now).total_seconds()
    assert 15 <= second_wait <= 25  # doubled: 20 s with jitter
    assert tick_and_publish(now + timedelta(seconds=60)) == ["failed"]

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error_code == "server_error_503"
    assert "Gave up after 3 attempts" in delivery.last_error
    assert fake_mastodon.statuses == []
    assert list(delivery.attempt_log.values_list("http_status", flat=True)) == [503, 503, 503]


def test_a_run_whose_worker_died_does_not_lengthen_the_next_backoff(
    membership, mastodon_channel, fake_mastodon, settings
):
    settings.HERALD_BACKOFF_BASE = 10
    post = schedule(membership, [mastodon_channel], "Crash, then a flaky server")
    claims: list[Any] = []
    dispatch.run_tick(enqueue=claims.extend)
    # The worker that took it started a run (counted) and died before anything was recorded.
    Delivery.objects.filter(pk=claims[0].delivery_id).update(
        attempts=1, claimed_until=timezone.now() - timedelta(seconds=1)
    )
    fake_mastodon.inject("POST", r"^/api/v1/statuses$", status=503, times=1)

    now = timezone.now()
    assert tick_and_publish(now) == ["retry"]  # reclaimed, then answered 503

    delivery = post.deliveries.get()
    assert (delivery.attempts, delivery.failures) == (2, 1)
    assert 7 <= (delivery.next_attempt_at - now).total_seconds() <= 13  # the first backoff
    assert "Attempt 2 of" in delivery.last_error
    assert tick_and_publish(now + timedelta(seconds=15)) == ["published"]
    assert len(fake_mastodon.statuses) == 1


def test_sharing_now_starts_the_backoff_over(membership, mastodon_channel, fake_mastodon, settings):
    settings.HERALD_BACKOFF_BASE = 10
    post = schedule(membership, [mastodon_channel], "Flaky, then shared now")
    fake_mastodon.inject("POST", r"^/api/v1/statuses$", status=503, times=3)
    now = timezone.now()
    assert tick_and_publish(now) == ["retry"]
    assert tick_and_publish(now + timedelta(seconds=15)) == ["retry"]
    assert post.deliveries.get().failures == 2  # the next wait would be 40 s

    share_now(post)
    assert tick_and_publish() == ["retry"]

    delivery = post.deliveries.get()
    assert delivery.failures == 1
    assert 7 <= (delivery.next_attempt_at - timezone.now()).total_seconds() <= 13


def test_auth_failure_marks_channel_and_keeps_the_post(membership, mastodon_channel, fake_mastodon):
    post = schedule(membership, [mastodon_channel], "Token gone")
    fake_mastodon.revoke("fake-token-alice")

    assert tick_and_publish() == ["needs_reconnect"]

    mastodon_channel.refresh_from_db()
    assert mastodon_channel.status == ChannelStatus.NEEDS_RECONNECT
    assert "no longer accepts" in mastodon_channel.status_detail
    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.SCHEDULED  # kept, waiting for the reconnect
    assert "Reconnect" in delivery.last_error
    assert tick_and_publish() == []  # not retried against a dead token

    # Reconnecting with a new token lets it go out.
    fake_mastodon.add_token("new-token")
    mastodon_channel.credentials = {"access_token": "new-token"}
    mastodon_channel.status = ChannelStatus.ACTIVE
    mastodon_channel.save()
    assert tick_and_publish() == ["published"]
    assert len(fake_mastodon.statuses) == 1


def test_rejected_post_fails_with_mastodons_message(membership, mastodon_channel, fake_mastodon):
    post = schedule(membership, [mastodon_channel], "Fine for Herald")
    fake_mastodon.inject(
        "POST", r"^/api/v1/statuses$", status=422, body={"error": "Validation failed: Text is spam"}
    )

    assert tick_and_publish() == ["failed"]

    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "Mastodon rejected the post: Validation failed: Text is spam"
    assert delivery.part_states[0]["in_flight"] is False


def test_past_catch_up_window_becomes_missed_and_can_be_retried(
    membership, mastodon_channel, fake_mastodon
):
    post = schedule(
        membership, [mastodon_channel], "Old news", at=timezone.now() - timedelta(hours=7)
    )

    assert tick_and_publish() == []
    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.MISSED
    assert "within 6 hours" in delivery.last_error
    assert fake_mastodon.statuses == []

    retry_delivery(delivery)
    assert tick_and_publish() == ["published"]
    assert len(fake_mastodon.statuses) == 1


def test_paused_channel_holds_its_posts(membership, mastodon_channel, fake_mastodon):
    from scheduler.channels import set_paused

    schedule(membership, [mastodon_channel], "Wait for me")
    set_paused(mastodon_channel, True)
    assert tick_and_publish() == []
    set_paused(mastodon_channel, False)
    assert tick_and_publish() == ["published"]


def test_illegal_transitions_raise(membership, mastodon_channel):
    post = schedule(membership, [mastodon_channel], "x")
    delivery = post.deliveries.get()
    with pytest.raises(states.IllegalTransition):
        states.transition(delivery, "succeed")
    with pytest.raises(states.IllegalTransition):
        retry_delivery(delivery)
    states.transition(delivery, "cancel")
    with pytest.raises(states.IllegalTransition):
        states.transition(delivery, "claim")


def test_unexpected_exception_is_recorded_on_the_delivery(
    membership, mastodon_channel, monkeypatch
):
    post = schedule(membership, [mastodon_channel], "boom")
    from scheduler.networks import mastodon as mastodon_network

    def explode(self, context):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(mastodon_network.MastodonNetwork, "publish_part", explode)

    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    assert delivery.last_error_code == "internal_error"
    assert "disk on fire" in delivery.last_error
    assert DeliveryAttempt.objects.get(delivery=delivery).error_code == "internal_error"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers", [2, 8])
def test_concurrent_dispatchers_and_workers_publish_each_delivery_exactly_once(
    workers, membership, fake_mastodon
):
    channels = [
        make_mastodon_channel(membership.workspace, fake_mastodon, remote_id=str(n))
        for n in range(4)
    ]
    posts = [schedule(membership, [channels[n % 4]], f"post {n}") for n in range(60)]

    def worker() -> bool:
        for _ in range(5):
            tick_and_publish()
        return True

    assert run_at_once(worker, workers) == [True] * workers  # no worker raised

    texts = [s["text"] for s in fake_mastodon.statuses]
    assert sorted(texts) == sorted(f"post {n}" for n in range(60))
    assert len(texts) == len(set(texts)) == 60
    assert Delivery.objects.filter(post__in=posts, status=DeliveryStatus.PUBLISHED).count() == 60


def test_a_later_definite_error_keeps_the_unknown_outcome_of_an_earlier_send(
    membership, mastodon_channel, fake_mastodon, settings
):
    settings.HERALD_BACKOFF_BASE = 0.01
    post = schedule(membership, [mastodon_channel], "Sent once, then rate limited")
    fake_mastodon.inject("POST", r"^/api/v1/statuses$", reset_after_handling=True)
    assert tick_and_publish() == ["retry"]
    fake_mastodon.rate_limit(60)
    assert tick_and_publish(timezone.now() + timedelta(seconds=5)) == ["rate_limited"]

    delivery = post.deliveries.get()
    assert delivery.part_states[0]["in_flight"] is True
    # Two hours later Mastodon has forgotten the key: only reconciliation prevents a duplicate.
    fake_mastodon.advance_clock(7200)
    delivery.part_states[0]["handle"]["created_at"] = (
        timezone.now() - timedelta(hours=2)
    ).isoformat()
    Delivery.objects.filter(pk=delivery.pk).update(part_states=delivery.part_states)

    assert tick_and_publish(timezone.now() + timedelta(seconds=90)) == ["published"]
    assert len(fake_mastodon.statuses) == 1


def test_rate_limited_waits_do_not_use_up_the_attempt_budget(
    membership, mastodon_channel, fake_mastodon, settings
):
    settings.HERALD_MAX_ATTEMPTS = 3
    post = schedule(membership, [mastodon_channel], "Patient")
    now = timezone.now()
    for n in range(6):
        fake_mastodon.rate_limit(1)
        assert tick_and_publish(now + timedelta(seconds=70 * n)) == ["rate_limited"]
    assert post.deliveries.get().attempts == 0

    assert tick_and_publish(now + timedelta(seconds=70 * 7)) == ["published"]


def test_rate_limit_wait_past_the_catch_up_window_ends_missed_not_late(
    membership, mastodon_channel, fake_mastodon
):
    due = timezone.now() - timedelta(seconds=1)
    post = schedule(membership, [mastodon_channel], "Too late to matter", at=due)
    fake_mastodon.rate_limit(8 * 3600)
    assert tick_and_publish() == ["rate_limited"]

    assert tick_and_publish(due + timedelta(hours=6, minutes=1)) == []

    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.MISSED
    assert "rate limit held it back" in delivery.last_error
    assert fake_mastodon.statuses == []


def test_claim_whose_workers_were_down_past_the_window_is_missed_not_published(
    membership, mastodon_channel, fake_mastodon, settings
):
    settings.HERALD_LEASE_SECONDS = 60
    post = schedule(membership, [mastodon_channel], "Workers were down")
    dispatch.run_tick(enqueue=lambda claim: None)  # claimed, but no worker ever runs it

    assert tick_and_publish(timezone.now() + timedelta(hours=7)) == []

    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.MISSED
    assert fake_mastodon.statuses == []


def test_user_retry_restarts_the_catch_up_window(membership, mastodon_channel, fake_mastodon):
    post = schedule(membership, [mastodon_channel], "Old", at=timezone.now() - timedelta(hours=7))
    assert tick_and_publish() == []
    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.MISSED

    retry_delivery(delivery)

    delivery.refresh_from_db()
    assert abs((delivery.due_at - timezone.now()).total_seconds()) < 5
    assert tick_and_publish() == ["published"]


def test_channel_paused_after_the_claim_is_not_published(
    membership, mastodon_channel, fake_mastodon
):
    from scheduler.channels import set_paused

    post = schedule(membership, [mastodon_channel], "Hold it")
    claims: list[Any] = []
    dispatch.run_tick(enqueue=claims.extend)
    set_paused(mastodon_channel, True)

    assert publish_delivery(claims[0].delivery_id, claim_token=claims[0].token) == "released"

    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.SCHEDULED
    assert delivery.attempts == 0
    assert fake_mastodon.statuses == []
    set_paused(mastodon_channel, False)
    assert tick_and_publish() == ["published"]

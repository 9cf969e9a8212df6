"""Publish batches: deliveries due in the same second go out in one task, with batched writes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduler import dispatch, publishing
from scheduler.models import Activity, Delivery, DeliveryAttempt, DeliveryStatus
from scheduler.networks import mastodon as mastodon_network
from scheduler.networks.base import ErrorCategory, NetworkError
from tests.conftest import make_mastodon_channel, run_at_once, schedule

# The batch sends on the worker's publishing threads, which use their own connections: the
# rows must be committed for them to see.
pytestmark = pytest.mark.django_db(transaction=True)


def _posts(membership, fake, count: int, prefix: str = "post", channels=None) -> list[Any]:  # type: ignore[no-untyped-def]
    channels = channels or [
        make_mastodon_channel(membership.workspace, fake, remote_id=str(n)) for n in range(4)
    ]
    due = timezone.now() - timedelta(seconds=1)
    return [
        schedule(membership, [channels[n % len(channels)]], f"{prefix} {n}", at=due)
        for n in range(count)
    ]


def _tick() -> list[list[dispatch.Claim]]:
    batches: list[list[dispatch.Claim]] = []
    dispatch.run_tick(enqueue=batches.append)
    return batches


def _publish(batch: list[dispatch.Claim]) -> dict[int, str]:
    return publishing.publish_batch([c.delivery_id for c in batch], claim_token=batch[0].token)


def test_each_batch_of_a_tick_has_a_token_of_its_own_and_one_due_second(
    membership, fake_mastodon, settings
):
    settings.HERALD_PUBLISH_BATCH = 5
    channel = make_mastodon_channel(membership.workspace, fake_mastodon, remote_id="1")
    now = timezone.now().replace(microsecond=0)
    for n in range(7):
        schedule(membership, [channel], f"now {n}", at=now - timedelta(seconds=5))
    later = [schedule(membership, [channel], f"later {n}", at=now + timedelta(seconds=1.5))]

    settings.HERALD_CLAIM_AHEAD = 3
    batches = _tick()

    assert [len(b) for b in batches] == [5, 2, 1]
    assert len({c.token for b in batches for c in b}) == 3
    assert all(len({c.token for c in b}) == 1 for b in batches)
    assert [c.delivery_id for c in batches[2]] == [later[0].deliveries.get().pk]
    assert batches[2][0].eta == now + timedelta(seconds=1.5)
    for batch in batches:  # the database holds each batch under its token
        ids = {c.delivery_id for c in batch}
        assert (
            set(Delivery.objects.filter(claim_token=batch[0].token).values_list("pk", flat=True))
            == ids
        )


def test_a_burst_is_enqueued_as_batches_and_each_batch_publishes_everything(
    membership, fake_mastodon, settings
):
    settings.HERALD_PUBLISH_BATCH = 5
    posts = _posts(membership, fake_mastodon, 12)

    batches = _tick()
    assert [len(b) for b in batches] == [5, 5, 2]
    outcomes: dict[int, str] = {}
    for batch in batches:
        outcomes.update(_publish(batch))

    assert set(outcomes.values()) == {"published"}
    assert sorted(s["text"] for s in fake_mastodon.statuses) == sorted(
        f"post {n}" for n in range(12)
    )
    for delivery in Delivery.objects.filter(post__in=posts):
        assert delivery.status == DeliveryStatus.PUBLISHED
        assert delivery.claim_token is None and delivery.published_at is not None
        [state] = delivery.part_states
        assert state["remote_id"] and not state["in_flight"]
        assert delivery.remote_urls == [state["url"]]
    assert DeliveryAttempt.objects.filter(outcome="published").count() == 12
    assert Activity.objects.filter(verb="published").count() == 12


def test_a_batch_costs_the_same_statements_for_3_deliveries_as_for_12(
    membership, fake_mastodon, settings
):
    settings.HERALD_PUBLISH_BATCH = 20
    channels = [make_mastodon_channel(membership.workspace, fake_mastodon, remote_id="1")]

    def statements(count: int, prefix: str) -> int:
        _posts(membership, fake_mastodon, count, prefix, channels)
        [batch] = _tick()
        with CaptureQueriesContext(connection) as queries:
            assert set(_publish(batch).values()) == {"published"}
        return len(queries)

    assert statements(3, "small") == statements(12, "large")
    assert len(fake_mastodon.statuses) == 15


def test_mixed_outcomes_in_one_batch_each_end_as_their_own(membership, fake_mastodon, monkeypatch):
    _posts(membership, fake_mastodon, 4)
    send = mastodon_network.MastodonNetwork.publish_part

    def publish_part(self, context):  # type: ignore[no-untyped-def]
        if context.part.text == "post 1":
            raise NetworkError(ErrorCategory.REJECTED, "unprocessable", "Text is not allowed.")
        if context.part.text == "post 2":
            raise NetworkError(ErrorCategory.TRANSIENT, "server_error", "Mastodon answered 503.")
        return send(self, context)

    monkeypatch.setattr(mastodon_network.MastodonNetwork, "publish_part", publish_part)
    [batch] = _tick()

    outcomes = _publish(batch)

    by_text = {d.post.parts.get().text: d for d in Delivery.objects.select_related("post")}
    assert outcomes == {
        by_text["post 0"].pk: "published",
        by_text["post 1"].pk: "failed",
        by_text["post 2"].pk: "retry",
        by_text["post 3"].pk: "published",
    }
    assert by_text["post 1"].status == DeliveryStatus.FAILED
    assert by_text["post 1"].last_error == "Text is not allowed."
    assert by_text["post 2"].status == DeliveryStatus.SCHEDULED
    assert by_text["post 2"].next_attempt_at > timezone.now()
    assert "Attempt 1 of" in by_text["post 2"].last_error
    assert {d.claim_token for d in by_text.values()} == {None}
    assert sorted(s["text"] for s in fake_mastodon.statuses) == ["post 0", "post 3"]
    assert sorted(DeliveryAttempt.objects.values_list("outcome", flat=True)) == [
        "failed",
        "published",
        "published",
        "retry",
    ]


def test_two_tasks_for_one_batch_publish_each_post_once(membership, fake_mastodon):
    """A broker redelivery or a duplicate enqueue of a whole batch."""
    _posts(membership, fake_mastodon, 6)
    [batch] = _tick()
    fake_mastodon.latency = 0.2  # both tasks are in flight together

    results = run_at_once(lambda: _publish(batch))

    outcomes = [outcome for result in results for outcome in result.values()]
    assert sorted(outcomes) == ["published"] * 6 + ["stale"] * 6
    assert sorted(s["text"] for s in fake_mastodon.statuses) == [f"post {n}" for n in range(6)]


def test_a_delivery_taken_over_during_the_batch_is_left_to_its_new_owner(
    membership, fake_mastodon, monkeypatch
):
    _posts(membership, fake_mastodon, 3)
    send = mastodon_network.MastodonNetwork.publish_part
    new_owner = uuid.uuid4()

    def publish_part(self, context):  # type: ignore[no-untyped-def]
        result = send(self, context)
        if context.part.text == "post 1":
            # Its lease ran out and another tick reclaimed it while the answer was on its way.
            Delivery.objects.filter(pk=self.channel.deliveries.get().pk).update(
                claim_token=new_owner
            )
        return result

    monkeypatch.setattr(mastodon_network.MastodonNetwork, "publish_part", publish_part)
    [batch] = _tick()

    outcomes = _publish(batch)

    taken = Delivery.objects.get(claim_token=new_owner)
    assert outcomes[taken.pk] == "lease_lost"
    assert taken.status == DeliveryStatus.PUBLISHING  # untouched: the new owner reconciles it
    assert taken.part_states[0]["in_flight"] is True
    others = Delivery.objects.exclude(pk=taken.pk)
    assert {d.status for d in others} == {DeliveryStatus.PUBLISHED}


def test_a_worker_dying_before_the_batch_ends_loses_nothing_and_duplicates_nothing(
    membership, fake_mastodon, monkeypatch, settings
):
    """Sent, but the worker died before writing it: the reclaim reconciles through the
    idempotency keys instead of posting again."""
    posts = _posts(membership, fake_mastodon, 5)
    [batch] = _tick()

    class Killed(BaseException):
        pass

    def die(runs, run_token):  # type: ignore[no-untyped-def]
        raise Killed()

    with monkeypatch.context() as patch:
        patch.setattr(publishing, "_end", die)
        with pytest.raises(Killed):
            _publish(batch)
    assert len(fake_mastodon.statuses) == 5
    assert {d.status for d in Delivery.objects.all()} == {DeliveryStatus.PUBLISHING}

    later = timezone.now() + timedelta(seconds=settings.HERALD_LEASE_SECONDS + 1)
    reclaimed: list[list[dispatch.Claim]] = []
    result = dispatch.run_tick(later, enqueue=reclaimed.append)
    assert len(result.reclaimed) == 5
    for again in reclaimed:
        assert set(_publish(again).values()) == {"published"}

    assert sorted(s["text"] for s in fake_mastodon.statuses) == [f"post {n}" for n in range(5)]
    assert Delivery.objects.filter(post__in=posts, status="published").count() == 5
    assert {d.attempts for d in Delivery.objects.all()} == {2}


def test_a_task_from_an_earlier_version_with_one_id_still_publishes(
    membership, mastodon_channel, fake_mastodon
):
    from scheduler import tasks

    post = schedule(membership, [mastodon_channel], "Enqueued before the upgrade")
    [[claim]] = _tick()

    assert tasks.publish.run(claim.delivery_id, str(claim.token)) == {
        claim.delivery_id: "published"
    }
    assert post.deliveries.get().status == DeliveryStatus.PUBLISHED


def test_update_each_writes_each_rows_own_values_of_every_kind(membership, mastodon_channel):
    posts = [schedule(membership, [mastodon_channel], f"row {n}") for n in range(3)]
    rows = [post.deliveries.get() for post in posts]
    when = timezone.now().replace(microsecond=123456)
    tokens = [uuid.uuid4(), None, uuid.uuid4()]
    for n, row in enumerate(rows):
        row.published_at = when + timedelta(seconds=n) if n != 1 else None
        row.part_states = [{"remote_id": str(n), "text": "ünïcode \" ' \\\\"}] if n else []
        row.last_error = ["", 'O\'Brien said "no"', "x"][n]
        row.attempts = n * 7
        row.claim_token = tokens[n]
    row_ids = [row.pk for row in rows]
    fields = ["published_at", "part_states", "last_error", "attempts", "claim_token"]

    assert Delivery.objects.filter(pk__in=row_ids).update_each(rows, fields) == 3

    for n, stored in enumerate(Delivery.objects.filter(pk__in=row_ids).order_by("pk")):
        assert [getattr(stored, f) for f in fields] == [getattr(rows[n], f) for f in fields]

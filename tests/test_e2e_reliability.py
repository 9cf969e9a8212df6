"""End to end: the real worker and beat recover from a database restart and from lost work."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scheduler.models import Delivery, DeliveryAttempt, DeliveryStatus
from tests.conftest import make_mastodon_channel, schedule

pytestmark = pytest.mark.e2e


def _all_published(posts) -> bool:  # type: ignore[no-untyped-def]
    published = Delivery.objects.filter(post__in=posts, status=DeliveryStatus.PUBLISHED)
    return published.count() == len(posts)


def _other_backends(action: str = "") -> int:
    """Count (or act on) the connections to the test database other than this test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count({action}(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_worker_and_tick_reconnect_after_their_connections_are_killed(
    celery_processes, membership, fake_mastodon
):
    channels = [
        make_mastodon_channel(membership.workspace, fake_mastodon, remote_id=str(n))
        for n in range(4)
    ]
    # Four posts due at once keep the four pool threads busy: each then holds a connection.
    before = [schedule(membership, [c], f"before the restart {n}") for n, c in enumerate(channels)]
    celery_processes.wait_for(lambda: _all_published(before), timeout=30, what="first publishes")
    time.sleep(2)  # a few more ticks

    log = celery_processes.tmp_path / "worker.log"
    log_before = len(log.read_text(errors="replace"))
    # What a database restart does to the worker: every connection it holds is cut.
    assert _other_backends("pg_terminate_backend") >= 2

    due = (timezone.now() + timedelta(seconds=2)).replace(microsecond=0)
    after = [
        schedule(membership, [c], f"after the restart {n}", at=due) for n, c in enumerate(channels)
    ]
    # Published means the tick (beat -> dispatch task) claimed them and publish tasks sent them,
    # all on reconnected connections.
    celery_processes.wait_for(lambda: _all_published(after), timeout=30, what="publishes after")

    texts = sorted(s["text"] for s in fake_mastodon.statuses)
    assert texts == sorted(
        f"{when} the restart {n}" for n in range(4) for when in ("before", "after")
    )
    attempts = DeliveryAttempt.objects.filter(delivery__post__in=after)
    assert [a.outcome for a in attempts] == ["published"] * 4  # first tries, none failed
    # No tick or publish task failed on a dead connection on the way (each costs a second).
    assert "raised unexpected" not in log.read_text(errors="replace")[log_before:]


SHORT_LEASE = {"HERALD_LEASE_SECONDS": "5", "HERALD_START_GRACE": "3"}


@pytest.mark.parametrize("celery_processes", [SHORT_LEASE], indirect=True)
def test_publish_longer_than_the_lease_keeps_its_claim(celery_processes, membership, fake_mastodon):
    """The worker renews the lease while the network takes its time: nobody takes it over."""
    channel = make_mastodon_channel(membership.workspace, fake_mastodon)
    fake_mastodon.inject("POST", r"^/api/v1/statuses$", delay=12)  # > 2 leases
    post = schedule(membership, [channel], "Slow server")

    celery_processes.wait_for(lambda: _all_published([post]), timeout=60, what="the publish")

    assert [s["text"] for s in fake_mastodon.statuses] == ["Slow server"]
    attempts = DeliveryAttempt.objects.filter(delivery__post=post)
    assert [a.outcome for a in attempts] == ["published"]  # no lease lost, no takeover
    assert len(fake_mastodon.requests_to("POST", r"^/api/v1/statuses$")) == 1


@pytest.mark.parametrize("celery_processes", [SHORT_LEASE], indirect=True)
def test_killed_worker_is_replaced_and_its_publish_reconciled_within_seconds(
    celery_processes, membership, fake_mastodon
):
    channel = make_mastodon_channel(membership.workspace, fake_mastodon)
    fake_mastodon.inject("POST", r"^/api/v1/statuses$", delay=3)
    post = schedule(membership, [channel], "Worker killed mid-publish")
    celery_processes.wait_for(
        lambda: fake_mastodon.requests_to("POST", r"^/api/v1/statuses$"),
        timeout=30,
        what="the status request to reach the server",
    )

    celery_processes.kill("worker")  # its request is still stored by the server
    celery_processes.start_worker("replacement")
    celery_processes.wait_for(lambda: _all_published([post]), timeout=60, what="the takeover")

    # The replacement reconciled through the Idempotency-Key instead of posting again.
    assert [s["text"] for s in fake_mastodon.statuses] == ["Worker killed mid-publish"]
    delivery = post.deliveries.get()
    assert delivery.part_states[0]["remote_id"] == fake_mastodon.statuses[0]["id"]


@pytest.mark.parametrize(
    "celery_processes", [{"HERALD_LEASE_SECONDS": "9", "HERALD_START_GRACE": "6"}], indirect=True
)
def test_tasks_waiting_in_a_busy_worker_keep_their_claims(
    celery_processes, membership, fake_mastodon
):
    """12 posts due at once, 4 threads, 5 s per publish: the last wait about 15 s, more than
    twice the start grace, received by the worker, and none is taken over or enqueued again."""
    channels = [
        make_mastodon_channel(membership.workspace, fake_mastodon, remote_id=str(n))
        for n in range(12)
    ]
    fake_mastodon.inject("POST", r"^/api/v1/statuses$", delay=5, times=12)
    posts = [schedule(membership, [c], f"busy {n}") for n, c in enumerate(channels)]

    celery_processes.wait_for(lambda: _all_published(posts), timeout=60, what="12 publishes")

    assert len(fake_mastodon.requests_to("POST", r"^/api/v1/statuses$")) == 12
    log = (celery_processes.tmp_path / "worker.log").read_text(errors="replace")
    assert "lease expired" not in log


def _restart_broker_empty() -> int:
    """What a Redis restart without persistence does to the workers: every queued and unacked
    message is gone, and every connection to the broker is cut. Returns connections cut."""
    import redis
    from django.conf import settings

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    db, own = str(broker.connection_pool.connection_kwargs.get("db", 0)), broker.client_id()
    broker.flushdb()
    cut = 0
    for client in broker.client_list():
        if str(client["db"]) == db and int(client["id"]) != own:
            cut += broker.client_kill_filter(_id=client["id"])
    return cut


@pytest.mark.parametrize("celery_processes", [SHORT_LEASE], indirect=True)
def test_a_task_dropped_with_the_broker_connection_is_taken_over_within_seconds(
    celery_processes, membership, fake_mastodon
):
    """The worker holds a task waiting for its ETA when Redis restarts empty: Celery drops the
    task on reconnecting, the worker stops renewing its claim, and the tick enqueues it again
    (instead of the claim being renewed until the task time limit, 15 minutes by default)."""
    channel = make_mastodon_channel(membership.workspace, fake_mastodon)
    due = (timezone.now() + timedelta(seconds=4)).replace(microsecond=0)
    post = schedule(membership, [channel], "Waiting for its second", at=due)
    celery_processes.wait_for(
        lambda: post.deliveries.filter(status=DeliveryStatus.PUBLISHING).exists(),
        timeout=10,
        what="the tick to claim the delivery",
    )
    time.sleep(0.5)  # the worker receives the task at once and keeps it until its ETA
    assert timezone.now() < due  # still waiting for its ETA

    assert _restart_broker_empty() >= 1

    celery_processes.wait_for(lambda: _all_published([post]), timeout=20, what="the takeover")
    assert [s["text"] for s in fake_mastodon.statuses] == ["Waiting for its second"]
    assert timezone.now() - due < timedelta(seconds=15)
    text = (celery_processes.tmp_path / "worker.log").read_text(errors="replace")
    assert "let go of 1 waiting claims" in text
    assert "lease expired on 1 deliveries" in text

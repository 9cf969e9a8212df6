"""The Celery application. Tasks are thin; the beat schedule lives in settings."""

import logging
import os
from typing import Any
from uuid import UUID

from celery import Celery, bootsteps
from celery.signals import (
    task_postrun,
    task_prerun,
    task_received,
    worker_process_init,
    worker_ready,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("herald")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
logger = logging.getLogger(__name__)
PUBLISH = "scheduler.tasks.publish"


@task_prerun.connect
@task_postrun.connect
def drop_unusable_connections(sender: Any = None, **kwargs: Any) -> None:
    """Do for each task what Django does for each request: drop a dead or expired connection.

    Celery's Django fix-up skips this while it reuses connections (CELERY_DB_REUSE_MAX), so a
    worker that lived through a database restart would keep failing on its dead connections.
    Runs in the thread that executes the task (each pool thread has its own connections), and
    arms Django's CONN_HEALTH_CHECKS so the task's first query finds a live connection.
    """
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # inside the caller's transaction (tests, eager mode): not ours to close
    from django.db import close_old_connections

    close_old_connections()


@worker_ready.connect
@worker_process_init.connect
def start_lease_heartbeat(**kwargs: Any) -> None:
    """Renew the leases of the claims this worker process holds (scheduler/leases.py)."""
    from scheduler import leases

    leases.start_heartbeat()


@task_received.connect
def hold_received_claim(request: Any = None, **kwargs: Any) -> None:
    """A publish task waiting in this worker (for its ETA, or for a free thread) keeps its claim:
    only a task nobody received is enqueued again."""
    if request is not None and request.name == PUBLISH:
        from scheduler import leases

        leases.hold(_claim_of(request.args), waiting=True)


@task_prerun.connect
def claim_started(sender: Any = None, args: Any = None, **kwargs: Any) -> None:
    if getattr(sender, "name", "") == PUBLISH and args:
        from scheduler import leases

        leases.started(_claim_of(args))


@task_postrun.connect
def release_claim(sender: Any = None, args: Any = None, **kwargs: Any) -> None:
    """However the task ended (even with an exception before it touched the row), this worker
    stops renewing the claim; the delivery is then taken over when its lease runs out."""
    if getattr(sender, "name", "") == PUBLISH and args:
        from scheduler import leases

        leases.release(_claim_of(args))


class ReleaseWaitingClaims(bootsteps.StartStopStep):
    """When the worker loses the broker connection, Celery drops the tasks it received but had
    not handed to the pool (waiting for their ETA: their messages cannot be acknowledged on a new
    connection): this worker stops renewing the claims of every task not started, so the tick
    takes them over as soon as their leases run out. Started publishes keep theirs. A task that
    was only waiting for a free thread still runs: if its claim was taken over first, it finds
    it gone and does nothing, as does a copy the broker delivers again."""

    def stop(self, parent: Any) -> None:  # also called on each reconnection
        from scheduler import leases

        dropped = leases.release_waiting()
        if dropped:
            logger.warning("broker connection lost: let go of %d waiting claims", dropped)


app.steps["consumer"].add(ReleaseWaitingClaims)


def _claim_of(args: Any) -> UUID:
    """The claim token of a publish task's arguments (delivery ids, token)."""
    return UUID(args[1])

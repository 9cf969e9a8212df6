"""Leases renewed while a worker holds a claim, so a dead worker's work is taken over in seconds.

A claim starts with a short lease: its due second plus HERALD_START_GRACE. A worker that receives
the publish task (or starts running it) holds the claim here, and one heartbeat thread per worker
process renews the leases of everything held, every few seconds, each renewal conditional on the
claim token. So:

- a worker killed with SIGKILL stops renewing: its claims expire HERALD_LEASE_SECONDS later and
  the next tick takes them over (reconciling through the idempotency handles);
- a task the broker lost (Redis restarted empty) is held by nobody: its claim expires
  HERALD_START_GRACE after its due time and the tick enqueues it again;
- a slow publish or a long video upload keeps its claim for as long as its worker lives (up to
  the task time limit: a claim held longer than that is let go, so a hung thread or a task that
  ended without releasing it cannot keep a delivery forever).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from .models import Delivery, DeliveryStatus

logger = logging.getLogger(__name__)

_lock = threading.Lock()
# Claim token -> monotonic time since when it is held. A token is one publish task's batch.
_held: dict[UUID, float] = {}
# The held claims of tasks received but not started yet.
_waiting: set[UUID] = set()
_thread: tuple[int, threading.Thread] | None = None


def hold(token: UUID, *, waiting: bool = False) -> None:
    """Renew the leases of this claim's deliveries until `release` (or the task time limit).
    `waiting`: the claim of a task received but not started (see `release_waiting`)."""
    with _lock:
        _held[token] = time.monotonic()
        if waiting:
            _waiting.add(token)


def started(token: UUID) -> None:
    """The task holding this claim started: it is no longer waiting in the worker."""
    with _lock:
        _waiting.discard(token)


def release(*tokens: UUID) -> None:
    with _lock:
        for token in tokens:
            _held.pop(token, None)
            _waiting.discard(token)


def release_waiting() -> int:
    """Stop renewing the claims of every task waiting in this worker (for its ETA or a free
    thread). Celery drops those tasks when it loses the broker connection, so nothing would ever
    release them: they would keep their deliveries until the task time limit instead of being
    taken over in seconds. Returns the number of claims let go."""
    with _lock:
        tokens = list(_waiting)
        _waiting.clear()
        for token in tokens:
            _held.pop(token, None)
    return len(tokens)


def held() -> list[UUID]:
    with _lock:
        return list(_held)


def interval() -> float:
    """Seconds between renewals: several per lease and per start grace, so one late round or
    a brief database outage does not lose a live claim."""
    return min(settings.HERALD_LEASE_SECONDS, settings.HERALD_START_GRACE) / 3


def renew_held() -> int:
    """Renew the leases of held claims that are due for it. Returns the number renewed.

    Claims no longer held in the database (finished, or taken over) are forgotten.
    """
    limit = settings.CELERY_TASK_TIME_LIMIT
    now_monotonic = time.monotonic()
    with _lock:
        tokens = [token for token, since in _held.items() if now_monotonic - since < limit]
    if not tokens:
        return 0
    publishing = Delivery.objects.filter(status=DeliveryStatus.PUBLISHING)
    alive = set(publishing.filter(claim_token__in=tokens).values_list("claim_token", flat=True))
    release(*(set(tokens) - alive))
    with _lock:  # not one released meanwhile (its task ended, or the worker dropped it)
        tokens = [token for token in alive if token in _held]
    if not tokens:
        return 0
    now = timezone.now()
    lease = timedelta(seconds=settings.HERALD_LEASE_SECONDS)
    # Renewed once half the lease is used: with the defaults (a round every 3.3 s, 30 s leases)
    # four more rounds may be late before it runs out, and the claims of a burst waiting in a
    # worker are rewritten every 15 s rather than every 10.
    due = publishing.filter(claim_token__in=tokens, claimed_until__lt=now + lease / 2)
    return due.update(claimed_until=now + lease)


def start_heartbeat() -> None:
    """Start this process's heartbeat thread (once per process: a forked child starts its own)."""
    global _thread
    with _lock:
        if _thread is not None and _thread[0] == os.getpid() and _thread[1].is_alive():
            return
        thread = threading.Thread(target=_beat, name="herald-lease-heartbeat", daemon=True)
        _thread = (os.getpid(), thread)
    thread.start()


def _beat() -> None:
    while True:
        time.sleep(interval())
        try:
            close_old_connections()  # a database restart must not stop the renewals for good
            renew_held()
        except Exception:
            logger.exception("renewing leases failed; retrying in %.0f s", interval())

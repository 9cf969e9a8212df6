"""The dispatch tick: find due work in PostgreSQL, claim it, and hand it to workers.

Beat runs `run_tick` every HERALD_DISPATCH_INTERVAL seconds. Any number of ticks may run at once
(several beats, a slow tick overlapping the next): claims use SELECT ... FOR UPDATE SKIP LOCKED and
a conditional UPDATE, so a delivery is claimed by one tick only.

1. Deliveries due longer ago than the catch-up window become `missed` (however long a rate
   limit or a disconnected channel made them wait: nothing is published that late).
2. Deliveries whose lease expired (the worker died, or no worker ever received the task) are
   claimed again and enqueued again; the publish that follows reconciles through the stored
   idempotency handles instead of posting blindly. One that was never sent and is past the
   catch-up window is `missed` instead.
3. Deliveries due within HERALD_CLAIM_AHEAD seconds are claimed and enqueued with an ETA of their
   due second, so they go out on time rather than at the next tick. The lease runs until
   HERALD_START_GRACE after the due second; the worker that receives the task renews it
   (`scheduler.leases`).

Claims are enqueued in batches: those of one tick due in the same second, HERALD_PUBLISH_BATCH at
most per task, so a burst costs one task and a few statements per batch rather than per delivery
(`scheduler.publishing`). Each batch has a claim token of its own, by which the worker holding
it renews its lease.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import events, states
from .models import ChannelStatus, Delivery, EngineHeartbeat, parts_sent

logger = logging.getLogger(__name__)

HEARTBEAT = "dispatch"


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    token: uuid.UUID
    eta: datetime


@dataclass
class TickResult:
    missed: int = 0
    reclaimed: list[Claim] = field(default_factory=list)
    claimed: list[Claim] = field(default_factory=list)


def run_tick(
    now: datetime | None = None,
    *,
    enqueue: Callable[[list[Claim]], None],
    backlog: Callable[[], int] | None = None,
) -> TickResult:
    """Run one dispatch tick. Returns what it did; `enqueue` receives each batch of claims
    (one token, one due second) after commit.

    `backlog` counts the publish tasks still waiting in the broker for a worker to fetch them.
    """
    now = now or timezone.now()
    result = TickResult(missed=mark_missed(now))
    result.reclaimed = reclaim_expired(now, limit=settings.HERALD_CLAIM_BATCH, backlog=backlog)
    result.claimed = claim_due(
        now, limit=settings.HERALD_CLAIM_BATCH, ahead=settings.HERALD_CLAIM_AHEAD
    )
    # claim_due and reclaim_expired commit their own transactions, so the claims are visible
    # to the workers that receive them.
    for batch in batches(result.reclaimed + result.claimed):
        enqueue(batch)
    EngineHeartbeat.touch(HEARTBEAT)
    if result.missed or result.reclaimed or result.claimed:
        logger.info(
            "tick: %d claimed, %d reclaimed, %d missed",
            len(result.claimed),
            len(result.reclaimed),
            result.missed,
        )
    return result


def batches(claims: list[Claim]) -> list[list[Claim]]:
    """Claims grouped by token, in order: each token is one batch, published by one task."""
    groups: dict[uuid.UUID, list[Claim]] = {}
    for claim in claims:
        groups.setdefault(claim.token, []).append(claim)
    return list(groups.values())


def _claim(rows: list[tuple[int, datetime, datetime]], name: str) -> list[Claim]:
    """Move the locked deliveries of `rows` (id, ETA, end of the lease) by transition `name`, in
    one UPDATE, each batch under a token of its own. A batch is the deliveries due in the same
    second, HERALD_PUBLISH_BATCH at most: one publish task. A token is thus held by one task
    only, and the worker that holds it renews the lease by the token (`scheduler.leases`)."""
    size = max(1, settings.HERALD_PUBLISH_BATCH)
    groups: dict[datetime, list[tuple[int, datetime, datetime]]] = {}
    for row in rows:
        groups.setdefault(row[1].replace(microsecond=0), []).append(row)
    claims: list[Claim] = []
    moves: list[tuple[Delivery, str, dict[str, Any]]] = []
    for group in groups.values():
        for start in range(0, len(group), size):
            token = uuid.uuid4()
            for pk, eta, until in group[start : start + size]:
                moves.append(
                    (Delivery(pk=pk), name, {"claim_token": token, "claimed_until": until})
                )
                claims.append(Claim(pk, token, eta))
    states.apply_each(Delivery.objects.filter(pk__in=[c.delivery_id for c in claims]), moves)
    return claims


def claim_due(now: datetime, *, limit: int, ahead: float) -> list[Claim]:
    """Claim scheduled deliveries of active channels due before now + `ahead` seconds."""
    horizon = now + timedelta(seconds=ahead)
    grace = timedelta(seconds=settings.HERALD_START_GRACE)
    with transaction.atomic():
        rows = list(
            Delivery.objects.due(horizon)
            .filter(channel__status=ChannelStatus.ACTIVE)
            .order_by("next_attempt_at")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("id", "next_attempt_at")[:limit]
        )
        # The lease runs until the start grace after the due second (or now, if overdue).
        return _claim([(pk, max(due, now), max(due, now) + grace) for pk, due in rows], "claim")


def reclaim_expired(
    now: datetime, *, limit: int, backlog: Callable[[], int] | None = None
) -> list[Claim]:
    """Claim again the deliveries whose lease nobody renewed, and enqueue them at once.

    While the broker still holds tasks no worker has fetched (a burst bigger than the workers
    can take in at once), an unrenewed claim may just be waiting there: nothing is reclaimed
    until that backlog is gone, so a burst is not enqueued twice. A delivery reclaimed over and
    over without a worker receiving it waits longer each time (a quarter of how late it is).
    """
    too_old = now - settings.HERALD_CATCH_UP_WINDOW
    with transaction.atomic():
        expired = list(
            Delivery.objects.lease_expired(now)
            .select_for_update(skip_locked=True)
            .values_list("id", "due_at", "next_attempt_at", "part_states")[:limit]
        )
        waiting = backlog() if expired and backlog else 0
        if waiting:
            logger.info(
                "%d leases expired; waiting for %d queued tasks first", len(expired), waiting
            )
            return []
        abandoned = {
            pk
            for pk, due_at, _, part_states in expired
            if due_at and due_at < too_old and not parts_sent(part_states)
        }
        if abandoned:
            states.apply(
                Delivery.objects.filter(pk__in=abandoned),
                "abandon",
                claim_token=None,
                **_missed_error(),
            )
        reclaimed = [
            (pk, now, now + timedelta(seconds=_reclaim_wait(now, next_attempt_at)))
            for pk, _, next_attempt_at, _ in expired
            if pk not in abandoned
        ]
        claims = _claim(reclaimed, "reclaim")
    if claims:
        logger.warning("lease expired on %d deliveries: reclaimed, reconciling", len(claims))
    return claims


def _reclaim_wait(now: datetime, next_attempt_at: datetime | None) -> float:
    """Seconds a reclaimed delivery's new lease lasts: a quarter of how late it is, in whole
    multiples of the start grace."""
    grace = settings.HERALD_START_GRACE
    late = (now - (next_attempt_at or now)).total_seconds()
    return float(grace * max(1, round(late / 4 / grace)))


def _missed_error() -> dict[str, Any]:
    hours = settings.HERALD_CATCH_UP_WINDOW.total_seconds() / 3600
    return {
        "last_error_code": "missed",
        "last_error": (
            f"Not published: it could not go out within {hours:g} hours of its time (Herald "
            "was not running, the channel was paused or disconnected, or the network's rate "
            "limit held it back), and Herald does not publish that late. Retry to publish it now."
        ),
    }


def mark_missed(now: datetime) -> int:
    """Deliveries due longer ago than the catch-up window are not published late."""
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(
                status="scheduled", due_at__lt=now - settings.HERALD_CATCH_UP_WINDOW
            )
            # In due order: the scan walks delivery_catch_up_idx and stops at the window. Without
            # it PostgreSQL, expecting a match early, filtered every scheduled row (188 ms on a
            # table of 1,000,000 scheduled deliveries; 0.07 ms with it).
            .order_by("due_at")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[: settings.HERALD_CLAIM_BATCH]
        )
        if not ids:
            return 0
        moved = states.apply(
            Delivery.objects.filter(pk__in=ids), "miss", claim_token=None, **_missed_error()
        )
    for delivery in Delivery.objects.filter(pk__in=ids, status="missed").select_related("channel"):
        transaction.on_commit(lambda d=delivery: events.delivery_missed(d))  # type: ignore[misc]
    return moved

"""The delivery state machine, declared once.

Every transition is a conditional UPDATE on the expected current state (and, for a claimed
delivery, on the claim token), so two workers can never both win. A transition that finds no row
in the expected state raises `IllegalTransition`.

    held       --schedule-->    scheduled      (post approved / scheduled)
    scheduled  --hold-->        held           (back to draft)
    scheduled  --claim-->       publishing
    publishing --succeed-->     published
    publishing --retry_later--> scheduled      (transient error or rate limit)
    publishing --fail-->        failed         (permanent, auth, or attempts exhausted)
    publishing --reclaim-->     publishing     (lease expired: a new claim reconciles)
    scheduled  --miss-->        missed         (past the catch-up window)
    publishing --abandon-->     missed         (lease expired before anything was sent, and
                                                the catch-up window has passed)
    failed/missed --retry-->    scheduled      (the user retries)
    held/scheduled --cancel-->  cancelled
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db import models
from django.db.models import QuerySet
from django.utils import timezone

if TYPE_CHECKING:
    from .models import Delivery, DeliveryQuerySet


class DeliveryStatus(models.TextChoices):
    HELD = "held", "Held (draft or awaiting approval)"
    SCHEDULED = "scheduled", "Scheduled"
    PUBLISHING = "publishing", "Publishing"
    PUBLISHED = "published", "Published"
    FAILED = "failed", "Failed"
    MISSED = "missed", "Missed"
    CANCELLED = "cancelled", "Cancelled"


S = DeliveryStatus

# Not started: a user may still edit, reschedule, reorder or cancel these (the `cancel`
# transition, `Delivery.can_cancel`, the composer's changes and the queue read this one set).
CHANGEABLE: tuple[str, ...] = (S.HELD, S.SCHEDULED)
# Ended without publishing: a user may retry these (the `retry` transition and
# `Delivery.can_retry`).
RETRYABLE: tuple[str, ...] = (S.FAILED, S.MISSED)

TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "schedule": ((S.HELD,), S.SCHEDULED),
    "hold": ((S.SCHEDULED,), S.HELD),
    "claim": ((S.SCHEDULED,), S.PUBLISHING),
    "succeed": ((S.PUBLISHING,), S.PUBLISHED),
    "retry_later": ((S.PUBLISHING,), S.SCHEDULED),
    "fail": ((S.PUBLISHING,), S.FAILED),
    "reclaim": ((S.PUBLISHING,), S.PUBLISHING),
    "miss": ((S.SCHEDULED,), S.MISSED),
    "abandon": ((S.PUBLISHING,), S.MISSED),
    "retry": (RETRYABLE, S.SCHEDULED),
    "cancel": (CHANGEABLE, S.CANCELLED),
}


class IllegalTransition(Exception):
    """The delivery was not in a state the transition starts from (or the claim was lost)."""


def apply(
    queryset: QuerySet[Delivery], name: str, *, under_claim: UUID | None = None, **changes: Any
) -> int:
    """Move every row of `queryset` that is in a source state of `name`. Returns rows moved.

    `under_claim` restricts the move to rows still held by that claim token.
    """
    sources, target = TRANSITIONS[name]
    rows = queryset.filter(status__in=sources)
    if under_claim is not None:
        rows = rows.filter(claim_token=under_claim)
    # updated_at by hand: update() skips auto_now, and calendar feeds read it as LAST-MODIFIED.
    return rows.update(status=target, **{"updated_at": timezone.now(), **changes})


def apply_each(
    queryset: DeliveryQuerySet, moves: list[tuple[Delivery, str, dict[str, Any]]]
) -> None:
    """Move several deliveries, each by its own transition and with its own changes, in one
    UPDATE per transition and set of changed fields (a publish batch ends this way).

    Each row of `queryset` must be in a source state of its move (lock them first): raises
    IllegalTransition otherwise. The instances are updated in memory.
    """
    now = timezone.now()
    groups: dict[tuple[str, tuple[str, ...]], list[Delivery]] = {}
    for delivery, name, changes in moves:
        delivery.status = TRANSITIONS[name][1]
        delivery.updated_at = now
        for field_name, value in changes.items():
            setattr(delivery, field_name, value)
        groups.setdefault((name, tuple(sorted(changes))), []).append(delivery)
    for (name, fields), deliveries in groups.items():
        sources, _ = TRANSITIONS[name]
        moved = queryset.filter(status__in=sources).update_each(
            deliveries, ["status", "updated_at", *fields]
        )
        if moved != len(deliveries):
            raise IllegalTransition(
                f"{len(deliveries) - moved} of {len(deliveries)} deliveries cannot {name}: "
                f"they are no longer {' or '.join(sources)}"
            )


def transition(
    delivery: Delivery, name: str, *, under_claim: UUID | None = None, **changes: Any
) -> None:
    """Move one delivery; raises IllegalTransition if it was not in a source state.

    On success the instance is updated in memory too.
    """
    rows = type(delivery)._default_manager.filter(pk=delivery.pk)
    moved = apply(rows, name, under_claim=under_claim, **changes)
    if moved != 1:
        sources, _ = TRANSITIONS[name]
        raise IllegalTransition(
            f"Delivery {delivery.pk} cannot {name}: it is no longer {' or '.join(sources)}"
            + (" under this claim" if under_claim else "")
        )
    delivery.status = TRANSITIONS[name][1]
    for field_name, value in changes.items():
        setattr(delivery, field_name, value)

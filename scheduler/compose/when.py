"""When a post goes out, parsed once for the API and the pages: queue, next, now, at, draft."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from .common import QUEUE_FIRST, QUEUE_LAST, ComposeError

WHEN_CHOICES = {
    "queue": "Add to the end of each channel's queue (next free slot)",
    "next": "Put first in each channel's queue (share next)",
    "now": "Publish now",
    "at": "Publish at scheduled_at",
    "draft": "Keep as a draft",
}
# A time a few seconds in the past is "now" given clock skew; older is a mistake.
PAST_TOLERANCE = timedelta(minutes=1)


def timing(when: str | None, at: datetime | None, *, now: datetime | None = None) -> dict[str, Any]:
    """The create_post/update_post keyword arguments for a `when` choice ({} for None).

    Raises ComposeError (key "scheduled_at") when a time is missing for "at", given with another
    choice, has no time zone, or has passed: a past time is never accepted as scheduled.
    """
    now = now or timezone.now()
    if when != "at" and at is not None:
        raise ComposeError({"scheduled_at": ["Only used with when=at; leave it out otherwise."]})
    if when == "at":
        return {"at": _future(at, now)}
    if when == "now":
        return {"at": now}
    if when in ("queue", "next"):
        return {"queue": QUEUE_LAST if when == "queue" else QUEUE_FIRST}
    if when == "draft":
        return {"draft": True}
    return {}


def _future(at: datetime | None, now: datetime) -> datetime:
    if at is None:
        raise ComposeError({"scheduled_at": ["Required: choose the date and time to publish at."]})
    if timezone.is_naive(at):
        raise ComposeError({"scheduled_at": ["Give the time with its time zone or UTC offset."]})
    if at < now - PAST_TOLERANCE:
        raise ComposeError(
            {"scheduled_at": ["This time has passed; choose a later time, or publish now."]}
        )
    return at


def parse_local(value: str, zone: str) -> datetime | None:
    """A form's local date and time ("2026-12-01T09:30") in the IANA `zone`; None when empty.

    Raises ComposeError when the value is not a date and time.
    """
    if not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=zoneinfo.ZoneInfo(zone))
    except ValueError as exc:
        raise ComposeError(
            {"scheduled_at": ["Give a date and time like 2026-12-01 09:30."]}
        ) from exc

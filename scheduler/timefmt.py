"""Instants written for a reader: in their time zone, with the date unless it is today."""

from __future__ import annotations

from datetime import datetime, tzinfo

from django.utils import timezone


def moment_text(
    moment: datetime, *, zone: tzinfo | None = None, now: datetime | None = None
) -> str:
    """ "18:53 CET" for a time today in `zone` (default: the active zone, the reader's),
    "Wed 2 Dec, 18:53 CET" on another day, with the year when it is not this year's."""
    zone = zone or timezone.get_current_timezone()
    local = moment.astimezone(zone)
    today = (now or timezone.now()).astimezone(zone).date()
    clock = f"{local:%H:%M} {local.tzname()}"
    if local.date() == today:
        return clock
    day = f"{local:%a} {local.day} {local:%b}" + (
        f" {local.year}" if local.year != today.year else ""
    )
    return f"{day}, {clock}"

"""`{{ instant|moment }}`: an instant in the reader's zone, dated unless it is today.
`{{ instant|ago }}`: how long ago, "just now" within the last minute."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from scheduler.timefmt import moment_text

register = template.Library()


@register.filter
def moment(value: datetime | None) -> str:
    return moment_text(value) if value else ""


@register.filter
def ago(value: datetime | None) -> str:
    """ "just now", "5 minutes ago", "2 days, 3 hours ago" (never "0 minutes ago")."""
    if not value:
        return ""
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value)} ago"

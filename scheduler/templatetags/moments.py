"""`{{ instant|moment }}`: an instant in the reader's zone, dated unless it is today."""

from __future__ import annotations

from datetime import datetime

from django import template

from scheduler.timefmt import moment_text

register = template.Library()


@register.filter
def moment(value: datetime | None) -> str:
    return moment_text(value) if value else ""

"""The post list: filters (status, channel, tag, date range, text) and order, as one queryset."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef, Prefetch, QuerySet

from accounts.models import Workspace

from .compose import form_ids
from .models import Delivery, Post, PostPart
from .overview import OverallStatus, with_overview

SORTS = {"-due": "Latest first", "due": "Soonest first"}


@dataclass
class PostFilters:
    status: str = ""
    channel: int | None = None
    tag: str = ""
    start: date | None = None
    end: date | None = None
    text: str = ""
    sort: str = "-due"

    @classmethod
    def from_query(cls, query: Any) -> PostFilters:
        """Read filters from a GET query; values that make no sense are ignored, not fatal."""
        status = query.get("status", "")
        return cls(
            status=status if status in OverallStatus.values else "",
            channel=_int(query.get("channel")),
            tag=query.get("tag", "").strip()[:50],
            start=_date(query.get("from")),
            end=_date(query.get("to")),
            text=query.get("q", "").strip()[:200],
            sort=query.get("sort") if query.get("sort") in SORTS else "-due",
        )

    @property
    def active(self) -> bool:
        return any((self.status, self.channel, self.tag, self.start, self.end, self.text))


def _int(value: str | None) -> int | None:
    return next(iter(form_ids([value or ""])), None)


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def find_posts(workspace: Workspace, filters: PostFilters, zone: str) -> QuerySet[Post]:
    """The workspace's posts matching `filters`, with overall status, parts and deliveries.

    Dates are whole days in `zone` (the reader's); the query count does not grow with the rows.
    """
    posts = with_overview(Post.objects.for_workspace(workspace))
    deliveries = Delivery.objects.filter(post=OuterRef("pk"))
    if filters.channel:
        posts = posts.filter(Exists(deliveries.filter(channel_id=filters.channel)))
    if filters.start:
        posts = posts.filter(Exists(deliveries.filter(due_at__gte=_day(filters.start, zone))))
    if filters.end:
        end = _day(filters.end, zone) + timedelta(days=1)
        posts = posts.filter(Exists(deliveries.filter(due_at__lt=end)))
    if filters.text:
        parts = PostPart.objects.filter(post=OuterRef("pk"), text__icontains=filters.text)
        posts = posts.filter(Exists(parts))
    if filters.tag:
        if connection.vendor == "postgresql":
            posts = posts.filter(tags__contains=[filters.tag])
        else:  # SQLite has no JSON containment; match the quoted tag in the stored list
            posts = posts.filter(tags__icontains=f'"{filters.tag}"')
    if filters.status:
        posts = posts.filter(overall=filters.status)  # type: ignore[misc]
    due = F("due").desc(nulls_first=True) if filters.sort == "-due" else F("due").asc()
    return posts.order_by(due, "-pk").prefetch_related(
        "parts",
        Prefetch("deliveries", Delivery.objects.select_related("channel").order_by("pk")),
    )


def _day(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=zoneinfo.ZoneInfo(zone))

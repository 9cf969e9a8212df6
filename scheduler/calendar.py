"""The content calendar: a week or month of deliveries and open queue slots, in the reader's zone.

Days are laid out in the reader's IANA zone and each day's bounds are that day's local midnights,
so a week across a daylight-saving change has one 23- or 25-hour day and nothing shifts. Open
slots come from `scheduler.queue.slot_times`, which expands schedules day by day in each
channel's own zone (a 09:00 slot stays 09:00 local all year).

Loading a range costs a fixed number of queries however many posts it holds: the channels, the
deliveries (with post, channel and first-part text), and the slots already taken.
"""

from __future__ import annotations

import contextlib
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import takewhile
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery, Window
from django.db.models.functions import Coalesce, Left, RowNumber, TruncDate
from django.utils import timezone

from accounts.models import Membership, Workspace

from . import activity, approvals, compose
from . import queue as queue_flows
from .models import (
    ActivityVerb,
    Channel,
    ChannelStatus,
    Delivery,
    DeliveryStatus,
    PostPart,
    PostStatus,
    WorkspaceQuerySet,
)

WEEK, MONTH = "week", "month"
VIEWS = (WEEK, MONTH)
PREVIEW_CHARS = 120
# What a chip shows: the delivery's state, except that a held one says why it is held.
DRAFT, PENDING = PostStatus.DRAFT.value, PostStatus.PENDING_APPROVAL.value
STATUS_LABELS = {
    DeliveryStatus.SCHEDULED.value: "Scheduled",
    PENDING: "Awaiting approval",
    DRAFT: "Draft",
    DeliveryStatus.PUBLISHING.value: "Publishing",
    DeliveryStatus.PUBLISHED.value: "Published",
    DeliveryStatus.FAILED.value: "Failed",
    DeliveryStatus.MISSED.value: "Missed",
    DeliveryStatus.CANCELLED.value: "Cancelled",
}


class CalendarError(Exception):
    """A calendar request or change cannot be done; the message says why and what to do."""


# -- ranges ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CalendarRange:
    """The days a view shows, in `zone`, and the UTC instants that bound them."""

    view: str
    zone: zoneinfo.ZoneInfo
    anchor: date
    days: list[date]

    @property
    def start(self) -> datetime:
        return local_midnight(self.days[0], self.zone)

    @property
    def end(self) -> datetime:
        return local_midnight(self.days[-1] + timedelta(days=1), self.zone)

    @property
    def previous(self) -> date:
        if self.view == WEEK:
            return self.anchor - timedelta(days=7)
        return (self.anchor - timedelta(days=1)).replace(day=1)

    @property
    def next(self) -> date:
        if self.view == WEEK:
            return self.anchor + timedelta(days=7)
        return (self.anchor + timedelta(days=32)).replace(day=1)


def local_midnight(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    """The UTC instant at which `day` starts in `zone`."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def calendar_range(view: str, *, around: date, zone_name: str) -> CalendarRange:
    """The week (Monday first) or the month (whole weeks) holding `around`, in that zone.

    Raises CalendarError for an unknown view or zone.
    """
    if view not in VIEWS:
        raise CalendarError(f"“{view}” is not a calendar view; use week or month.")
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(f"“{zone_name}” is not an IANA time zone.") from exc
    if view == WEEK:
        anchor = around - timedelta(days=around.weekday())
        return CalendarRange(view, zone, anchor, [anchor + timedelta(days=n) for n in range(7)])
    anchor = around.replace(day=1)
    first = anchor - timedelta(days=anchor.weekday())
    last_of_month = (anchor + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    last = last_of_month + timedelta(days=6 - last_of_month.weekday())
    return CalendarRange(
        view, zone, anchor, [first + timedelta(days=n) for n in range((last - first).days + 1)]
    )


# -- filters ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CalendarFilters:
    """Empty sets mean "all"."""

    channels: frozenset[int] = frozenset()
    networks: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    tag: str = ""

    @property
    def shows_open_slots(self) -> bool:
        # Open slots are neither of a status nor tagged: a filter on either hides them.
        return not self.statuses and not self.tag

    @property
    def active(self) -> bool:
        return bool(self.channels or self.networks or self.statuses or self.tag)

    def admits(self, channel: Channel) -> bool:
        """Whether the channel filters let this channel through."""
        return (not self.channels or channel.pk in self.channels) and (
            not self.networks or channel.network in self.networks
        )


def channel_filter(filters: CalendarFilters, prefix: str = "") -> Q:
    condition = Q()
    if filters.channels:
        condition &= Q(**{f"{prefix}pk__in": filters.channels})
    if filters.networks:
        condition &= Q(**{f"{prefix}network__in": filters.networks})
    return condition


def status_filter(statuses: frozenset[str]) -> Q:
    """Deliveries showing any of `statuses` (see `display_status`); all but cancelled if empty."""
    if not statuses:
        return ~Q(status=DeliveryStatus.CANCELLED)
    condition = Q(status__in=statuses - {DRAFT, PENDING})
    for held_reason in statuses & {DRAFT, PENDING}:
        condition |= Q(status=DeliveryStatus.HELD, post__status=held_reason)
    return condition


def tag_filter(tag: str) -> Q:
    if connection.vendor == "postgresql":
        return Q(post__tags__contains=[tag])
    return Q(post__tags__icontains=f'"{tag}"')  # SQLite has no JSON containment


def display_status(delivery: Delivery) -> str:
    """The delivery's status as the calendar names it (a held one says draft or approval)."""
    if delivery.status == DeliveryStatus.HELD:
        return PENDING if delivery.post.status == PostStatus.PENDING_APPROVAL else DRAFT
    return str(delivery.status)


# -- loading a range -------------------------------------------------------------------------------
@dataclass
class OpenSlot:
    channel: Channel
    at: datetime
    link: str = ""  # filled in by the page: the composer for this channel and moment


@dataclass
class CalendarDay:
    day: date
    entries: list[Delivery] = field(default_factory=list)
    open_slots: list[OpenSlot] = field(default_factory=list)
    total: int = 0  # the day's entries in all; `entries` may hold only the first few


@dataclass
class CalendarPage:
    range: CalendarRange
    channels: list[Channel]  # all of the workspace's, for the filter form
    days: list[CalendarDay]

    @property
    def entry_count(self) -> int:
        return sum(day.total for day in self.days)


# What a calendar row needs; credentials, overrides and options stay unread (and undecrypted).
ROW_FIELDS = (
    "id", "post_id", "channel_id", "status", "pinned", "part_states",
    "post__id", "post__status", "post__author_id",
)  # fmt: skip
SHOWN_ORDER = (F("shown_at").asc(), F("pk").asc())  # within a day too: time, then creation


# What the calendar reads of a channel: its name, avatar and network, and what open slots need.
CHANNEL_FIELDS = (
    "id", "workspace_id", "network", "handle", "display_name", "name", "avatar_url", "status",
    "timezone", "schedule",
)  # fmt: skip


def workspace_channels(workspace: Workspace) -> list[Channel]:
    """The workspace's channels in display order, with only CHANNEL_FIELDS read (never their
    credentials): the calendar, the feed and the queue's tabs list every channel."""
    return list(
        Channel.objects.for_workspace(workspace).only(*CHANNEL_FIELDS).order_by("network", "handle")
    )


def deliveries_in(
    workspace: Workspace,
    *,
    start: datetime,
    end: datetime,
    filters: CalendarFilters,
    channels: list[Channel],
    preview_chars: int = PREVIEW_CHARS,
    fields: tuple[str, ...] = (),
) -> list[Delivery]:
    """The workspace's deliveries shown between `start` and `end`, each at its `shown_at`.

    A published delivery is shown when it went out, the others when they are due. Each row
    carries `preview` (the start of its first part), its post, and its channel from `channels`;
    of the rows only ROW_FIELDS and `fields` are read.
    """
    rows = _rows_in(workspace, start=start, end=end, filters=filters)
    rows = rows.only(*ROW_FIELDS, *fields).annotate(preview=preview_of_post(preview_chars))
    return _with_channels(list(rows), channels)


def first_deliveries_of_days(
    workspace: Workspace,
    *,
    period: CalendarRange,
    filters: CalendarFilters,
    channels: list[Channel],
    per_day: int,
) -> list[Delivery]:
    """Like `deliveries_in` over the period, but only the first `per_day` of each local day.

    Days are the reader's (`period.zone`); each row also carries `day_total`, how many
    deliveries its day shows in all. The same order as `deliveries_in`.
    """
    local_day = TruncDate("shown_at", tzinfo=period.zone)
    rows = (
        _rows_in(workspace, start=period.start, end=period.end, filters=filters)
        .only(*ROW_FIELDS)
        .annotate(
            day_total=Window(Count("pk"), partition_by=[local_day]),
            day_rank=Window(RowNumber(), partition_by=[local_day], order_by=[*SHOWN_ORDER]),
        )
        .filter(day_rank__lte=per_day)
        .annotate(preview=preview_of_post())
    )
    return _with_channels(list(rows), channels)


def _rows_in(
    workspace: Workspace, *, start: datetime, end: datetime, filters: CalendarFilters
) -> WorkspaceQuerySet:
    rows = (
        Delivery.objects.for_workspace(workspace)
        .annotate(shown_at=Coalesce("published_at", "due_at"))
        .filter(shown_at__gte=start, shown_at__lt=end)
        .filter(channel_filter(filters, "channel__"), status_filter(filters.statuses))
        .select_related("post")
        .order_by(*SHOWN_ORDER)
    )
    return rows.filter(tag_filter(filters.tag)) if filters.tag else rows


def _with_channels(rows: list[Delivery], channels: list[Channel]) -> list[Delivery]:
    by_id = {channel.pk: channel for channel in channels}
    for delivery in rows:
        delivery.channel = by_id[delivery.channel_id]
    return rows


def preview_of_post(chars: int = PREVIEW_CHARS) -> Left:
    """An annotation: the first `chars` characters of the delivery's post's first part."""
    first_text = PostPart.objects.filter(post=OuterRef("post"), position=0).values("text")[:1]
    return Left(Subquery(first_text), chars)


# What a queue row shows: its slot, whether it is held, and who may change its post.
QUEUE_ROW_FIELDS = ("id", "post_id", "status", "due_at", "post__id", "post__author_id")


# What a channel tab shows.
def queue_rows(channel: Channel) -> list[Delivery]:
    """The channel's queue in publishing order, each with its post and `preview`. One query;
    of the rows only QUEUE_ROW_FIELDS are read."""
    rows = queue_flows.queued_rows(channel).select_related("post").only(*QUEUE_ROW_FIELDS)
    return list(rows.annotate(preview=preview_of_post()))


def pinned_rows(channel: Channel, *, limit: int = 20) -> list[Delivery]:
    """The channel's next posts with a time of their own (not in the queue), with `preview`;
    of the rows only QUEUE_ROW_FIELDS are read."""
    rows = Delivery.objects.filter(
        channel=channel,
        pinned=True,
        status__in=queue_flows.QUEUE_STATUSES,
        due_at__gt=timezone.now(),
    ).select_related("post")
    rows = rows.only(*QUEUE_ROW_FIELDS).annotate(preview=preview_of_post())
    return list(rows.order_by("due_at", "pk")[:limit])


def load_calendar(
    workspace: Workspace,
    period: CalendarRange,
    filters: CalendarFilters,
    *,
    per_day: int | None = None,
) -> CalendarPage:
    """Everything a week or month view shows, grouped by local day. Three queries.

    With `per_day`, a day's `entries` are only its first `per_day` (its `total` counts all).
    """
    every_channel = workspace_channels(workspace)
    channels = [channel for channel in every_channel if filters.admits(channel)]
    days = {day: CalendarDay(day) for day in period.days}
    if per_day is None:
        rows = deliveries_in(
            workspace, start=period.start, end=period.end, filters=filters, channels=every_channel
        )
    else:
        rows = first_deliveries_of_days(
            workspace, period=period, filters=filters, channels=every_channel, per_day=per_day
        )
    for delivery in rows:
        local = delivery.shown_at.astimezone(period.zone)  # type: ignore[attr-defined]
        day = days[local.date()]
        day.entries.append(delivery)
        day.total = len(day.entries) if per_day is None else delivery.day_total  # type: ignore[attr-defined]
    if filters.shows_open_slots:
        for slot in open_slots(channels, start=period.start, end=period.end):
            days[slot.at.astimezone(period.zone).date()].open_slots.append(slot)
    return CalendarPage(period, every_channel, list(days.values()))


def open_slots(channels: list[Channel], *, start: datetime, end: datetime) -> list[OpenSlot]:
    """Future slots between `start` and `end` on active channels that no delivery sits on."""
    after = max(start - timedelta(microseconds=1), timezone.now())
    if after >= end:
        return []
    slots = [
        OpenSlot(channel, at)
        for channel in channels
        if channel.status == ChannelStatus.ACTIVE
        for at in takewhile(lambda at: at < end, queue_flows.slot_times(channel, after=after))
    ]
    if not slots:
        return []
    taken = set(
        Delivery.objects.filter(  # due_at__lt excludes nulls
            channel__in={slot.channel.pk for slot in slots},  # of hundreds, the few with slots
            status__in=queue_flows.OCCUPYING_STATUSES,
            due_at__gt=after,
            due_at__lt=end,
        ).values_list("channel_id", "due_at")
    )
    found = [slot for slot in slots if (slot.channel.pk, slot.at) not in taken]
    return sorted(found, key=lambda slot: (slot.at, slot.channel.pk))


# -- rescheduling by drag --------------------------------------------------------------------------
def reschedule_delivery(membership: Membership, delivery_id: int, *, at: datetime) -> Delivery:
    """Move one delivery (a post on one channel) to `at`, as a custom time.

    The composer's rule applies: only what has sent nothing yet (held or scheduled) moves. A
    queued delivery leaves its queue, whose later posts move up. Raises Delivery.DoesNotExist
    outside the workspace, CalendarError (with the reason) when the move is refused.
    """
    if timezone.is_naive(at):
        raise CalendarError("Give the new time with its time zone.")
    rows = Delivery.objects.for_workspace(membership.workspace).select_related("post", "channel")
    delivery = rows.get(pk=delivery_id)
    _check_may_move(membership, delivery)
    if at <= timezone.now():
        raise CalendarError("That time has passed; choose a time in the future.")
    with transaction.atomic():
        # Channel first, then the row: the order every queue change locks in.
        queue_flows.lock_channel(delivery.channel)
        delivery = rows.select_for_update(of=("self",)).get(pk=delivery_id)
        reason = compose.why_unchangeable(delivery)
        if reason:
            raise CalendarError(f"This post cannot be moved: {reason}")
        was_queued = not delivery.pinned
        _pin_at(delivery, at)
        activity.record(
            ActivityVerb.RESCHEDULED,
            workspace_id=delivery.workspace_id,
            actor=membership.user,
            post=delivery.post,
            channel=delivery.channel,
            changes={"to": at.isoformat()},
        )
        # A contributor's move of an approved post needs a new approval, as in the composer.
        approvals.send_back_for_review(membership, delivery.post)
        if was_queued:
            with contextlib.suppress(queue_flows.QueueError):
                # Later posts move up onto the freed slot; that never needs more slots.
                queue_flows.reflow(delivery.channel)
    delivery.refresh_from_db()
    return delivery


def _check_may_move(membership: Membership, delivery: Delivery) -> None:
    if not membership.can_change_post(delivery.post):
        raise CalendarError(
            "Viewers cannot move posts."
            if not membership.can_compose
            else "Contributors can move only their own posts."
        )


def _pin_at(delivery: Delivery, at: datetime) -> None:
    changes: dict[str, Any] = {"due_at": at, "pinned": True, "updated_at": timezone.now()}
    if delivery.status == DeliveryStatus.SCHEDULED:
        changes.update(next_attempt_at=at, failures=0)  # a new time: its backoff starts over
    Delivery.objects.filter(pk=delivery.pk, status__in=compose.CHANGEABLE).update(**changes)

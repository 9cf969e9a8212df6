"""HTML views for the content calendar, posting schedules, queues and the calendar feed.

Each page is server-rendered; its forms post with htmx, which swaps the page's region from the
full response (hx-select), so one template serves both. Without JavaScript the same forms post
normally and are redirected back (post/redirect/get) with a message.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypedDict
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET, require_POST, require_safe

from accounts.models import CANCEL_REFUSED, Membership
from accounts.urlcache import reverse_pk

from . import calendar as cal
from . import channels as channel_flows
from . import compose, feeds
from . import queue as queue_flows
from .models import Channel, ChannelStatus, Delivery, DeliveryStatus, web_link
from .networks import network_choices
from .web import member_view, require

CHANNEL_COLOURS = 8
MONTH_CHIPS = 3
# How many characters of a post's text a chip shows (as the truncatechars filter counts them).
WEEK_TEXT_CHARS, MONTH_TEXT_CHARS = 90, 40
ZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})


def _zone(request: HttpRequest) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(request.user.timezone)  # type: ignore[union-attr]


def _render(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """Render with the reader's zone current, so template filters show times in it."""
    with timezone.override(_zone(request)):
        return render(request, template, context)


def _answer(
    request: HttpRequest,
    page: Any,
    back: str,
    *,
    notice: str = "",
    problem: str = "",
) -> HttpResponse:
    """htmx gets the page with the outcome in its live region; a plain form post a redirect."""
    if request.headers.get("HX-Request"):
        return page(notice=notice, problem=problem)
    if problem:
        messages.error(request, problem)
    elif notice:
        messages.success(request, notice)
    return redirect(back)


def local_input(at: datetime, zone: zoneinfo.ZoneInfo) -> str:
    """A time as a datetime-local value in `zone`, e.g. 2026-10-21T09:00."""
    return at.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def compose_link(*, at: datetime | None, zone: zoneinfo.ZoneInfo, channel: int | None) -> str:
    """The composer, asked to prefill a time (in the reader's zone) and a channel."""
    query = {"at": local_input(at, zone)} if at else {}
    if channel:
        query["channel"] = str(channel)
    return _compose_url() + ("?" + urlencode(query) if query else "")


def _post_url(pk: int) -> str:
    return reverse_pk("scheduler:post_detail", pk)


def _edit_url(pk: int) -> str:
    return reverse_pk("scheduler:edit_post", pk)


@functools.cache
def _compose_url() -> str:
    # reverse() costs tens of microseconds; a week view links hundreds of open slots.
    return reverse("scheduler:compose")


# -- calendar --------------------------------------------------------------------------------------
class Chip(TypedDict):
    """One delivery as its chip shows it, in strings worked out once: a busy week has hundreds
    of chips, and per chip a template filter, an int (number formatting) or a model attribute
    lookup costs more than this. A dict, as template lookups try a key first."""

    ref: str  # the delivery's id, for dragging and the Move dialog
    url: str
    colour: str
    status: str  # as the calendar names it (cal.display_status)
    status_label: str
    time: str  # HH:MM in the reader's zone
    at: str  # the datetime-local value of that time, for the Move dialog
    text: str  # the start of the post, shortened
    channel: str  # the channel's label
    avatar: str  # the channel's avatar, rendered once per channel
    movable: bool


@dataclass
class Item:
    """One line of a week column: a post on a channel, or the channels with a slot then."""

    at: datetime
    chip: Chip | None = None
    slots: list[cal.OpenSlot] = field(default_factory=list)
    local_time: str = ""
    iso: str = ""


def _filters(query: Any) -> cal.CalendarFilters:
    def numbers(name: str) -> frozenset[int]:
        return frozenset(compose.form_ids(query.getlist(name)))

    statuses = frozenset(v for v in query.getlist("status") if v in cal.STATUS_LABELS)
    networks = frozenset(v for v in query.getlist("network") if v in dict(network_choices()))
    tag = query.get("tag", "").strip()[:50]
    return cal.CalendarFilters(numbers("channel"), networks, statuses, tag)


def _period(request: HttpRequest) -> cal.CalendarRange:
    zone = _zone(request)
    try:
        around = date.fromisoformat(request.GET.get("date", ""))
    except ValueError:
        around = timezone.now().astimezone(zone).date()
    view = request.GET.get("view", cal.WEEK)
    return cal.calendar_range(
        view if view in cal.VIEWS else cal.WEEK, around=around, zone_name=zone.key
    )


def _calendar_context(request: HttpRequest, membership: Membership) -> dict[str, Any]:
    period = _period(request)
    filters = _filters(request.GET)
    week = period.view == cal.WEEK
    # A month cell shows its first few posts and counts the rest and the open slots.
    per_day = None if week else MONTH_CHIPS
    page = cal.load_calendar(membership.workspace, period, filters, per_day=per_day)
    now = timezone.now()
    today = now.astimezone(period.zone).date()
    _decorate_channels(page)
    chars = WEEK_TEXT_CHARS if week else MONTH_TEXT_CHARS
    # What truncatechars would end a shortened text with, looked up once, not twice per chip.
    ellipsis = pgettext("String to return when truncating text", "%(truncated_text)s…")
    days = []
    for day in page.days:
        chips = [
            _chip(delivery, membership, period.zone, chars=chars, ellipsis=ellipsis)
            for delivery in day.entries
        ]
        items = _items(day, chips, period) if week else []
        days.append(_day_context(day, items, chips, today, period, now))
    query = request.GET.copy()
    return {
        "membership": membership,
        "period": period,
        "filters": filters,
        "days": days,
        "entry_count": page.entry_count,
        "channel_options": _channel_options(page.channels, filters),
        "networks": network_choices(),
        "statuses": cal.STATUS_LABELS,
        "query": query.urlencode(),
        "filter_query": _without(query, "date", "view"),
        "today": today,
        "zone": period.zone.key,
    }


def _channel_options(
    channels: list[Channel], filters: cal.CalendarFilters
) -> list[tuple[int, str, bool]]:
    """(value, text, selected) of the channel filter's options: get_network_display() per
    channel would cost more than the rest of the form."""
    networks = dict(network_choices())
    return [
        (
            channel.pk,
            f"{channel.label} ({networks.get(channel.network, channel.network)})",
            channel.pk in filters.channels,
        )
        for channel in channels
    ]


def _decorate_channels(page: cal.CalendarPage) -> None:
    """Colour and avatar of the channels the days show (not of every channel in the filter)."""
    shown = {delivery.channel for day in page.days for delivery in day.entries}
    shown.update(slot.channel for day in page.days for slot in day.open_slots)
    networks = dict(network_choices())
    for channel in shown:
        # Rendered once per channel, not once per chip: a busy week has hundreds of chips.
        channel.__dict__["colour"] = str(channel.pk % CHANNEL_COLOURS)
        channel.__dict__["avatar_html"] = channel_avatar(channel, networks)


def channel_avatar(channel: Channel, networks: dict[str, str]) -> SafeString:
    """A channel's small avatar as the calendar, the queue and the schedule show it: its
    picture, or its initial when it has none that is safe to show. Built here rather than by
    an included template: a page shows it once per channel tab or per calendar channel."""
    network = networks.get(channel.network, channel.network)
    src = web_link(channel.avatar_url)
    inner = (
        format_html('<img src="{}" alt="" width="20" height="20">', src)
        if src
        else format_html(
            '<span aria-hidden="true">{}</span>', channel.label.replace("@", "")[:1].upper()
        )
    )
    return format_html(
        '<span class="cal-avatar network-{}" title="{} ({})">{}</span>',
        channel.network,
        channel.label,
        network,
        inner,
    )


def _items(day: cal.CalendarDay, chips: list[Chip], period: cal.CalendarRange) -> list[Item]:
    """A week column: the day's posts, and its open slots one line per time, in time order."""
    items = [
        Item(delivery.shown_at, chip=chip)  # type: ignore[attr-defined]
        for delivery, chip in zip(day.entries, chips, strict=True)
    ]
    by_time: dict[datetime, Item] = {}
    for slot in day.open_slots:
        slot.link = compose_link(at=slot.at, zone=period.zone, channel=slot.channel.pk)
        if slot.at not in by_time:
            local = slot.at.astimezone(period.zone).strftime("%H:%M")
            by_time[slot.at] = Item(slot.at, local_time=local, iso=slot.at.isoformat())
        by_time[slot.at].slots.append(slot)
    return sorted([*items, *by_time.values()], key=lambda item: (item.at, item.chip is None))


def _without(query: Any, *names: str) -> str:
    kept = query.copy()
    for name in names:
        kept.pop(name, None)
    return kept.urlencode()


def _chip(
    delivery: Delivery,
    membership: Membership,
    zone: zoneinfo.ZoneInfo,
    *,
    chars: int,
    ellipsis: str,
) -> Chip:
    shown: datetime = delivery.shown_at  # type: ignore[attr-defined]
    status = cal.display_status(delivery)
    channel = delivery.channel
    text = delivery.preview or "(media only)"  # type: ignore[attr-defined]
    return {
        "ref": str(delivery.pk),
        "url": _post_url(delivery.post_id),
        "colour": str(delivery.channel_id % CHANNEL_COLOURS),
        "status": status,
        "status_label": cal.STATUS_LABELS[status],
        "time": shown.astimezone(zone).strftime("%H:%M"),
        "at": local_input(shown, zone),
        "text": Truncator(text).chars(chars, ellipsis),
        "channel": channel.label,
        "avatar": channel.avatar_html,  # type: ignore[attr-defined]
        "movable": compose.why_unchangeable(delivery) is None
        and membership.can_change_post(delivery.post),
    }


def _day_context(
    day: cal.CalendarDay,
    items: list[Item],
    chips: list[Chip],
    today: date,
    period: cal.CalendarRange,
    now: datetime,
) -> dict[str, Any]:
    add_at: datetime | None = None
    if day.day > today:
        add_at = datetime.combine(day.day, time(9), tzinfo=period.zone)
    elif day.day == today:
        add_at = (
            (now + timedelta(hours=1))
            .astimezone(period.zone)
            .replace(minute=0, second=0, microsecond=0)
        )
        if add_at.astimezone(period.zone).date() != today:
            add_at = None
    in_month = period.view == cal.WEEK or day.day.month == period.anchor.month
    return {
        "date": day.day,
        "iso": day.day.isoformat(),
        "items": items,
        "entries": day.entries,
        "chips": chips[:MONTH_CHIPS],
        "more": max(0, day.total - MONTH_CHIPS),
        "open_count": len(day.open_slots),
        "is_today": day.day == today,
        "is_past": day.day < today,
        "in_month": in_month,
        "add_link": compose_link(at=add_at, zone=period.zone, channel=None) if add_at else "",
    }


@require_GET
@member_view
def calendar_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _render_calendar(request, membership)


def _render_calendar(
    request: HttpRequest, membership: Membership, *, notice: str = "", problem: str = ""
) -> HttpResponse:
    context = _calendar_context(request, membership)
    context.update(notice=notice, problem=problem)
    return _render(request, "scheduler/calendar.html", context)


@require_POST
@member_view
def calendar_move(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Reschedule one delivery (drag and drop, or the Move dialog), then show the calendar."""
    zone = _zone(request)
    back = reverse("scheduler:calendar") + "?" + request.GET.urlencode()
    try:
        delivery_id = int(request.POST.get("delivery", ""))
        current = Delivery.objects.for_workspace(membership.workspace).get(pk=delivery_id)
        at = _new_time(request.POST, current, zone)
        moved = cal.reschedule_delivery(membership, delivery_id, at=at)
    except (ValueError, Delivery.DoesNotExist):
        problem = "That post is no longer in this workspace's calendar."
        return _answer(request, _partial(request, membership), back, problem=problem)
    except cal.CalendarError as error:
        return _answer(request, _partial(request, membership), back, problem=str(error))
    due = moved.due_at.astimezone(zone) if moved.due_at else at
    notice = f"Moved to {due:%a %-d %b, %H:%M} ({zone.key})."
    return _answer(request, _partial(request, membership), back, notice=notice)


def _partial(request: HttpRequest, membership: Membership) -> Any:
    return lambda **outcome: _render_calendar(request, membership, **outcome)


def _new_time(form: Any, delivery: Delivery, zone: zoneinfo.ZoneInfo) -> datetime:
    """The drop target's time: an exact moment (`at`), or a day keeping the local time of day."""
    if form.get("at"):
        try:
            value = datetime.fromisoformat(form["at"])
        except ValueError as exc:
            raise cal.CalendarError("Give the new time like 2026-10-21T09:30.") from exc
        return value if value.tzinfo else value.replace(tzinfo=zone)
    try:
        day = date.fromisoformat(form.get("day", ""))
    except ValueError as exc:
        raise cal.CalendarError("Drop the post on a day of the calendar.") from exc
    current = (delivery.published_at or delivery.due_at or timezone.now()).astimezone(zone)
    return datetime.combine(day, current.time().replace(microsecond=0), tzinfo=zone)


# -- queue -----------------------------------------------------------------------------------------
# The queue and posting-schedule pages list hundreds of posts and a tab per channel. What each
# row or tab shows is made here as plain strings: in the template, the date and truncatechars
# filters, an include per tab and the localising of numbers cost more than the rest of the row.
@dataclass
class QueueRow:
    """A post due on the channel, as the queue and posting-schedule pages list it."""

    key: str  # the delivery's id, as its buttons send it
    position: str
    day: str  # "Mon 1 Jun" in the reader's zone
    time: str  # "09:00"
    text: str
    url: str
    edit_url: str  # "" when the reader may not change the post
    held: bool


@dataclass
class ChannelTab:
    """A channel's tab above the queue and posting-schedule pages."""

    url: str
    label: str
    avatar: SafeString
    current: bool
    paused: bool


def _rows(
    deliveries: list[Delivery], membership: Membership, zone: zoneinfo.ZoneInfo, *, chars: int
) -> list[QueueRow]:
    """Rows of deliveries due at a time, times in `zone` and texts cut to `chars` characters."""
    rows = []
    for position, delivery in enumerate(deliveries, start=1):
        local = delivery.due_at.astimezone(zone)  # type: ignore[union-attr]  # both queries ask for one
        text = delivery.preview or "(media only)"  # type: ignore[attr-defined]
        rows.append(
            QueueRow(
                key=str(delivery.pk),
                position=str(position),
                day=f"{local:%a} {local.day} {local:%b}",
                time=f"{local:%H:%M}",
                # truncatechars' cut, asked only of the texts it would cut
                text=text if len(text) <= chars else Truncator(text).chars(chars),
                url=_post_url(delivery.post_id),
                edit_url=(
                    _edit_url(delivery.post_id) if membership.can_change_post(delivery.post) else ""
                ),
                held=delivery.status == DeliveryStatus.HELD,
            )
        )
    return rows


def _channel_tabs(membership: Membership, current: Channel, view_name: str) -> list[ChannelTab]:
    """A tab per channel of the workspace, each linking to `view_name` for its channel."""
    names = dict(network_choices())
    return [
        ChannelTab(
            url=reverse_pk(view_name, channel.pk),
            label=channel.label,
            avatar=channel_avatar(channel, names),
            current=channel.pk == current.pk,
            paused=channel.status == ChannelStatus.PAUSED,
        )
        for channel in cal.workspace_channels(membership.workspace)
    ]


def _channel(membership: Membership, pk: int) -> Channel:
    return get_object_or_404(Channel.objects.for_workspace(membership.workspace), pk=pk)


@require_GET
@member_view
def queue_index(request: HttpRequest, membership: Membership) -> HttpResponse:
    channels = Channel.objects.for_workspace(membership.workspace).order_by("handle")
    first = channels.values_list("pk", flat=True).first()
    if first is not None:
        return redirect("scheduler:queue", pk=first)
    return render(request, "scheduler/queue.html", {"membership": membership, "channel": None})


@require_GET
@member_view
def queue_page(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    return _render_queue(request, membership, _channel(membership, pk))


def _render_queue(
    request: HttpRequest,
    membership: Membership,
    channel: Channel,
    *,
    notice: str = "",
    problem: str = "",
) -> HttpResponse:
    zone = _zone(request)
    gaps = [
        {"at": at.astimezone(zone), "link": compose_link(at=at, zone=zone, channel=channel.pk)}
        for at in queue_flows.next_slots(channel, count=3)
    ]
    context = {
        "membership": membership,
        "channel": channel,
        "tabs": _channel_tabs(membership, channel, "scheduler:queue"),
        "channel_avatar": channel_avatar(channel, dict(network_choices())),
        "rows": _rows(cal.queue_rows(channel), membership, zone, chars=160),
        "gaps": gaps,
        "pinned": _rows(cal.pinned_rows(channel), membership, zone, chars=100),
        "zone": zone.key,
        "has_schedule": bool(channel.schedule),
        "add_link": reverse("scheduler:compose") + f"?channel={channel.pk}&when=queue",
        "notice": notice,
        "problem": problem,
    }
    return _render(request, "scheduler/queue.html", context)


@require_POST
@member_view
def queue_action(
    request: HttpRequest, membership: Membership, pk: int, action: str
) -> HttpResponse:
    """Reorder (drag), move (keyboard), shuffle, remove, pause or resume; then show the queue."""
    channel = _channel(membership, pk)
    back = reverse("scheduler:queue", args=[channel.pk])
    try:
        notice = _queue_change(membership, channel, action, request.POST)
    except queue_flows.QueueError as error:
        return _answer(
            request, _queue_partial(request, membership, channel), back, problem=str(error)
        )
    return _answer(request, _queue_partial(request, membership, channel), back, notice=notice)


def _queue_partial(request: HttpRequest, membership: Membership, channel: Channel) -> Any:
    def page(**outcome: str) -> HttpResponse:
        channel.refresh_from_db()
        return _render_queue(request, membership, channel, **outcome)

    return page


def _queue_change(membership: Membership, channel: Channel, action: str, form: Any) -> str:
    if action in ("pause", "resume"):
        require(membership.can_manage_channels, "Only owners and admins pause channels.")
        if channel.status == ChannelStatus.NEEDS_RECONNECT:
            raise queue_flows.QueueError("Reconnect this channel before pausing or resuming it.")
        channel_flows.set_paused(channel, action == "pause")
        return (
            "Paused: nothing is published on this channel until you resume it."
            if action == "pause"
            else "Resumed: queued posts go out at their times again."
        )
    if action == "remove":
        return _remove(membership, channel, form)
    require(membership.can_publish, "Only editors and above reorder the queue.")
    if action == "shuffle":
        queue_flows.shuffle(channel)
        return "Shuffled: the queued posts keep the same slots in a new order."
    if action == "reorder":
        ids = compose.form_ids(form.getlist("order"))
        queue_flows.reorder(channel, ids)
        return "Reordered: each post now takes the slot shown."
    if action == "move":
        delivery_id = _delivery_id(form)
        rows = queue_flows.move_in_queue(channel, delivery_id, to=form.get("to", ""))
        position = next(n for n, d in enumerate(rows, start=1) if d.pk == delivery_id)
        return f"Moved to position {position} of {len(rows)}."
    raise Http404("No such queue action.")


def _delivery_id(form: Any) -> int:
    """The id of the post a move or remove button names. Raises QueueError when it is no id."""
    ids = compose.form_ids([form.get("delivery", "")])
    if not ids:
        raise queue_flows.QueueError(
            "That is not a post of this queue; reload the page and try again."
        )
    return ids[0]


def _remove(membership: Membership, channel: Channel, form: Any) -> str:
    delivery = (
        Delivery.objects.for_workspace(membership.workspace)
        .filter(pk=_delivery_id(form), channel=channel)
        .select_related("post")
        .first()
    )
    if delivery is None:
        raise queue_flows.QueueError("That post is no longer in this queue.")
    require(membership.can_cancel(delivery.post), CANCEL_REFUSED)
    if not compose.cancel_post(delivery.post, channel=channel):
        raise queue_flows.QueueError("That post is already being published, so it stays.")
    return f"Removed from {channel.label}'s queue; the posts after it moved up."


# -- posting schedule ------------------------------------------------------------------------------
@member_view
def schedule_page(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    channel = _channel(membership, pk)
    if request.method != "POST":
        return _render_schedule(request, membership, channel)
    require(membership.can_manage_channels, "Only owners and admins set posting schedules.")
    back = reverse("scheduler:schedule", args=[channel.pk])
    try:
        notice = _schedule_change(channel, request.POST)
    except queue_flows.QueueError as error:
        return _answer(
            request, _schedule_partial(request, membership, channel), back, problem=str(error)
        )
    return _answer(request, _schedule_partial(request, membership, channel), back, notice=notice)


def _schedule_partial(request: HttpRequest, membership: Membership, channel: Channel) -> Any:
    def page(**outcome: str) -> HttpResponse:
        channel.refresh_from_db()
        return _render_schedule(request, membership, channel, **outcome)

    return page


def _schedule_change(channel: Channel, form: Any) -> str:
    action, day = form.get("action", ""), form.get("day", "")
    zone_name, slots = channel.timezone, channel.schedule or {}
    value = form.get("time", "")
    if action == "add":
        slots, notice = (
            queue_flows.with_time(slots, day, value, present=True),
            f"Added {value} on {_day_name(day)}.",
        )
    elif action == "remove":
        slots, notice = (
            queue_flows.with_time(slots, day, value, present=False),
            f"Removed {value} from {_day_name(day)}.",
        )
    elif action == "copy":
        targets = form.getlist("targets")
        if not targets:
            raise queue_flows.QueueError("Tick the days to copy to.")
        slots = queue_flows.with_day_copied(slots, day, targets)
        notice = f"Copied {_day_name(day)}'s times to {', '.join(_day_name(d) for d in targets)}."
    elif action == "timezone":
        zone_name = form.get("timezone", "").strip()
        notice = f"Time zone set to {zone_name}: slots keep their clock times there."
    else:
        raise queue_flows.QueueError("Unknown change; reload the page and try again.")
    queue_flows.set_schedule(channel, timezone_name=zone_name, slots=slots)
    return notice + " The queue has re-flowed onto the new slots."


def _day_name(day: str) -> str:
    names = dict(zip(queue_flows.WEEKDAYS, DAY_NAMES, strict=True))
    return names.get(day, day)


DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# The time-zone picker's ~600 choices, rendered once rather than on every schedule page.
ZONE_OPTIONS = format_html_join("", '<option value="{}"></option>', ((name,) for name in ZONES))


def _render_schedule(
    request: HttpRequest,
    membership: Membership,
    channel: Channel,
    *,
    notice: str = "",
    problem: str = "",
) -> HttpResponse:
    zone = _zone(request)
    slots = queue_flows.normalise_schedule(channel.schedule or {})
    days = [
        {"key": key, "name": name, "times": slots.get(key, [])}
        for key, name in zip(queue_flows.WEEKDAYS, DAY_NAMES, strict=True)
    ]
    context = {
        "membership": membership,
        "channel": channel,
        "days": days,
        "tabs": _channel_tabs(membership, channel, "scheduler:schedule"),
        "zone_options": ZONE_OPTIONS,
        "rows": _rows(cal.queue_rows(channel), membership, zone, chars=80),
        "zone": zone.key,
        "slot_count": sum(len(t) for t in slots.values()),
        "notice": notice,
        "problem": problem,
    }
    return _render(request, "scheduler/schedule.html", context)


# -- calendar feed ---------------------------------------------------------------------------------
@member_view
def feed_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Turn the member's iCalendar feed on, give it a new address, or turn it off."""
    back = reverse("scheduler:feed_settings")
    if request.method == "POST":
        action = request.POST.get("action")
        if action in ("on", "regenerate"):
            feeds.issue_feed(membership)
            notice = (
                "Feed turned on: copy the address into your calendar app."
                if action == "on"
                else "New address made: the old one no longer works; update your calendar app."
            )
        elif action == "off":
            feeds.turn_off_feed(membership)
            notice = "Feed turned off: its address no longer works."
        else:
            notice = ""
        return _answer(
            request,
            lambda **o: _render_feed_settings(request, membership, **o),
            back,
            notice=notice,
        )
    return _render_feed_settings(request, membership)


def _render_feed_settings(
    request: HttpRequest, membership: Membership, *, notice: str = "", problem: str = ""
) -> HttpResponse:
    feed = feeds.member_feed(membership)
    context = {
        "membership": membership,
        "feed": feed,
        "feed_url": feeds.feed_url(feed) if feed else "",
        "notice": notice,
        "problem": problem,
    }
    return _render(request, "scheduler/calendar_feed_settings.html", context)


@require_safe  # calendar apps may check with HEAD
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The secret iCalendar feed; 404 for an unknown or revoked token."""
    feed = feeds.find_feed(token)
    if feed is None:
        raise Http404("No calendar feed at this address; it may have been turned off.")
    response = HttpResponse(feeds.render_feed(feed), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="herald.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response

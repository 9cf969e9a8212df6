"""Posting schedules and the queue: weekly slots per channel, filled in order.

A channel's schedule is `{"mon": ["09:00", "13:30"], ...}` in its IANA time zone. Slots are
expanded day by day as wall-clock times in that zone and only then converted to UTC, so a
daylight-saving change never moves a slot: 09:00 stays 09:00 local all year. A slot that falls
in a spring-forward gap (02:30 on the night clocks jump from 02:00 to 03:00) happens an hour
later in wall-clock terms, 03:30, the same instant Python's zoneinfo gives it.

Queued deliveries (`pinned=False`) sit on slots in order. "Add to queue" takes the first free
slot, "share next" puts a delivery in front and moves the others back one slot; reordering,
shuffling, cancelling a queued post or changing the schedule re-flows the queue onto the slots
from now on. Deliveries with a custom time (`pinned=True`) never move, and a slot they sit on
exactly is taken.

Every queue change locks the channel row first, so two changes to one queue never interleave;
the dispatch tick skips rows locked here (SKIP LOCKED) and a delivery it already claimed is no
longer in the queue.
"""

from __future__ import annotations

import random
import re
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import validate_timezone

from . import states
from .models import Channel, Delivery, DeliveryStatus

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SLOTS_PER_DAY = 48
# How far ahead slots are looked for: enough for a long queue on a sparse schedule.
HORIZON_DAYS = 5 * 366
QUEUE_STATUSES = states.CHANGEABLE  # queued: not started yet
# Deliveries that keep the slot they sit on.
OCCUPYING_STATUSES = (
    DeliveryStatus.HELD,
    DeliveryStatus.SCHEDULED,
    DeliveryStatus.PUBLISHING,
    DeliveryStatus.PUBLISHED,
)
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class QueueError(ValueError):
    """The queue cannot do what was asked; the message says why and what to do."""


# -- schedules ----------------------------------------------------------------------------------------
def normalise_schedule(slots: Any) -> dict[str, list[str]]:
    """A validated copy of a weekly schedule: weekday keys, sorted unique "HH:MM" times.

    Raises QueueError naming the first problem.
    """
    if not isinstance(slots, dict):
        raise QueueError('Give the slots as an object like {"mon": ["09:00", "13:30"]}.')
    clean: dict[str, list[str]] = {}
    for day, times in slots.items():
        if day not in WEEKDAYS:
            raise QueueError(f"“{day}” is not a weekday; use {', '.join(WEEKDAYS)}.")
        if not isinstance(times, list) or not all(isinstance(t, str) for t in times):
            raise QueueError(f'Give the {day} slots as a list of times like ["09:00"].')
        for value in times:
            if not _TIME_RE.match(value):
                raise QueueError(f"“{value}” on {day} is not a time like 09:00 (24-hour HH:MM).")
        unique = sorted(set(times))
        if len(unique) > MAX_SLOTS_PER_DAY:
            raise QueueError(f"At most {MAX_SLOTS_PER_DAY} slots a day; {day} has {len(unique)}.")
        if unique:
            clean[day] = unique
    return {day: clean[day] for day in WEEKDAYS if day in clean}


def with_time(schedule: Any, day: str, value: str, *, present: bool) -> dict[str, list[str]]:
    """A copy of `schedule` with the time added to (present) or removed from that weekday.

    Raises QueueError for an invalid day, time or schedule.
    """
    clean = normalise_schedule(schedule)
    times = set(clean.get(day, []))
    times = times | {value} if present else times - {value}
    return normalise_schedule({**clean, day: sorted(times)})


def with_day_copied(schedule: Any, source: str, targets: list[str]) -> dict[str, list[str]]:
    """A copy of `schedule` where each target weekday has the same times as `source`."""
    if source not in WEEKDAYS:
        raise QueueError(f"“{source}” is not a weekday; use {', '.join(WEEKDAYS)}.")
    clean = normalise_schedule(schedule)
    return normalise_schedule({**clean, **{day: clean.get(source, []) for day in targets}})


def set_schedule(channel: Channel, *, timezone_name: str, slots: Any) -> Channel:
    """Save the channel's time zone and weekly slots, then re-flow its queue onto them.

    Raises QueueError if the zone or a slot is invalid, or if queued posts would be left without
    a slot (nothing is saved then).
    """
    try:
        validate_timezone(timezone_name)
    except Exception as exc:
        raise QueueError(
            f"“{timezone_name}” is not an IANA time zone, e.g. Europe/Berlin."
        ) from exc
    schedule = normalise_schedule(slots)
    with transaction.atomic():
        lock_channel(channel)
        channel.timezone, channel.schedule = timezone_name, schedule
        channel.save(update_fields=["timezone", "schedule"])
        reflow(channel)
    return channel


# -- slots ------------------------------------------------------------------------------------------
def slot_times(channel: Channel, *, after: datetime) -> Iterator[datetime]:
    """The channel's slot instants (UTC) strictly after `after`, earliest first."""
    zone = zoneinfo.ZoneInfo(channel.timezone)
    by_weekday = {
        WEEKDAYS.index(day): [time.fromisoformat(value) for value in values]
        for day, values in normalise_schedule(channel.schedule or {}).items()
    }
    if not by_weekday:
        return
    first_day = after.astimezone(zone).date()
    for offset in range(HORIZON_DAYS):
        day = first_day + timedelta(days=offset)
        for instant in _instants_on(day, by_weekday.get(day.weekday(), []), zone):
            if instant > after:
                yield instant


def _instants_on(day: date, times: list[time], zone: zoneinfo.ZoneInfo) -> list[datetime]:
    # Wall-clock first, then UTC; sorted because a slot in a spring-forward gap lands an hour
    # later and may pass the next slot of that day.
    instants = {datetime.combine(day, slot, tzinfo=zone).astimezone(UTC) for slot in times}
    return sorted(instants)


def free_slots(
    channel: Channel, *, count: int, after: datetime | None = None, ignore: set[int] | None = None
) -> list[datetime]:
    """The first `count` slots after `after` (default now) that no other delivery sits on.

    Deliveries whose ids are in `ignore` (the ones being placed) do not count as sitting on a
    slot. Returns fewer than `count` when the schedule runs out (or is empty).
    """
    after = after or timezone.now()
    if count <= 0:
        return []
    taken = set(
        Delivery.objects.filter(channel=channel, status__in=OCCUPYING_STATUSES, due_at__gt=after)
        .exclude(pk__in=ignore or set())
        .values_list("due_at", flat=True)
    )
    found: list[datetime] = []
    for slot in slot_times(channel, after=after):
        if slot not in taken:
            found.append(slot)
            if len(found) == count:
                break
    return found


def next_slots(channel: Channel, *, count: int = 5) -> list[datetime]:
    """The next free slots, for showing where the next queued posts would go."""
    return free_slots(channel, count=count)


# -- the queue ----------------------------------------------------------------------------------------
def queued(channel: Channel) -> list[Delivery]:
    """The channel's queue: deliveries waiting on slots, in the order they go out."""
    return list(queued_rows(channel).select_related("post"))


def queued_rows(channel: Channel) -> Any:
    """The queue as a queryset, in publishing order."""
    return Delivery.objects.filter(
        channel=channel, pinned=False, status__in=QUEUE_STATUSES, due_at__isnull=False
    ).order_by("due_at", "pk")


def check_queueable(channels: list[Channel]) -> dict[str, list[str]]:
    """Messages (keyed by channel id) for channels that have no slot to queue a post on."""
    errors: dict[str, list[str]] = {}
    for channel in channels:
        if not free_slots(channel, count=1):
            errors[str(channel.pk)] = [
                f"{channel.handle} has no free posting slot: set its posting schedule "
                "(PUT /channels/{id}/schedule) or choose a time."
            ]
    return errors


def enqueue(delivery: Delivery, *, first: bool = False) -> Delivery:
    """Put a delivery on its channel's queue: on the first free slot, or in front of the others.

    Raises QueueError when the channel has no free slot.
    """
    channel = delivery.channel
    with transaction.atomic():
        lock_channel(channel)
        Delivery.objects.filter(pk=delivery.pk).update(pinned=False)
        delivery.pinned = False
        if first:
            others = [d for d in queued_rows(channel).select_for_update() if d.pk != delivery.pk]
            _place(channel, [delivery, *others])
            delivery.refresh_from_db(fields=["due_at", "next_attempt_at"])
            return delivery
        slots = free_slots(channel, count=1, ignore={delivery.pk})
        if not slots:
            raise QueueError(f"{channel.handle} has no free posting slot left in its schedule.")
        _move(delivery, slots[0])
    return delivery


def reflow(channel: Channel, order: list[int] | None = None) -> list[Delivery]:
    """Put the queued deliveries back on the first free slots from now, in `order` if given.

    `order` lists delivery ids to put first; the rest keep their current order after them.
    Returns the queue in its new order. Raises QueueError for an id not in the queue or when the
    schedule has too few slots.
    """
    with transaction.atomic():
        lock_channel(channel)
        current = list(queued_rows(channel).select_for_update())
        if order is not None:
            current = _apply_order(current, order)
        _place(channel, current)
    return queued(channel)


def reorder(channel: Channel, delivery_ids: list[int]) -> list[Delivery]:
    """Reorder the queue: the given deliveries first, in that order. Returns the new queue."""
    return reflow(channel, delivery_ids)


QUEUE_MOVES = ("top", "up", "down")


def move_in_queue(channel: Channel, delivery_id: int, *, to: str) -> list[Delivery]:
    """Move one queued delivery to the top, or one place up or down. Returns the new queue.

    The keyboard alternative to dragging. Raises QueueError when the delivery left the queue.
    """
    ids = [delivery.pk for delivery in queued(channel)]
    if to not in QUEUE_MOVES:
        raise QueueError(f"Move a post {', '.join(QUEUE_MOVES)}; “{to}” is not one of them.")
    if delivery_id not in ids:
        raise QueueError("That post is no longer in this queue; here is the queue as it is now.")
    index = ids.index(delivery_id)
    ids.pop(index)
    ids.insert({"top": 0, "up": max(0, index - 1), "down": index + 1}[to], delivery_id)
    return reflow(channel, ids)


def shuffle(channel: Channel, *, rng: random.Random | None = None) -> list[Delivery]:
    """Put the queued deliveries in a random order on the same slots. Returns the new queue."""
    ids = [delivery.pk for delivery in queued(channel)]
    (rng or random.Random()).shuffle(ids)
    return reflow(channel, ids)


def _apply_order(current: list[Delivery], order: list[int]) -> list[Delivery]:
    by_id = {delivery.pk: delivery for delivery in current}
    if len(set(order)) != len(order):
        raise QueueError("Each delivery may appear only once in the new order.")
    unknown = [pk for pk in order if pk not in by_id]
    if unknown:
        raise QueueError(
            f"Not in this channel's queue: {', '.join(map(str, unknown))}. Only queued posts "
            "(not custom-time, not publishing or published) can be reordered."
        )
    listed = [by_id[pk] for pk in order]
    return listed + [delivery for delivery in current if delivery.pk not in set(order)]


def _place(channel: Channel, ordered: list[Delivery]) -> None:
    slots = free_slots(channel, count=len(ordered), ignore={d.pk for d in ordered})
    if len(slots) < len(ordered):
        raise QueueError(
            f"{channel.handle} has {len(ordered)} queued posts but only {len(slots)} free slots "
            "ahead: add posting slots or give some posts a time of their own."
        )
    for delivery, slot in zip(ordered, slots, strict=True):
        if delivery.due_at != slot:
            _move(delivery, slot)


def _move(delivery: Delivery, slot: datetime) -> None:
    changes: dict[str, Any] = {"due_at": slot, "updated_at": timezone.now()}
    if delivery.status == DeliveryStatus.SCHEDULED:
        changes["next_attempt_at"] = slot
    # Only rows still waiting move: one the dispatcher claimed meanwhile keeps its time.
    Delivery.objects.filter(pk=delivery.pk, status__in=QUEUE_STATUSES).update(**changes)
    for name, value in changes.items():
        setattr(delivery, name, value)


def lock_channel(channel: Channel) -> None:
    """Lock the channel row until the transaction ends: queue changes never interleave."""
    Channel.objects.select_for_update().filter(pk=channel.pk).values_list("pk").first()

"""Posting schedules and the queue: slots in the channel's zone, add/next, reorder, re-flow."""

from __future__ import annotations

import random
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from scheduler import queue
from scheduler.compose import (
    QUEUE_FIRST,
    QUEUE_LAST,
    ComposeError,
    PartInput,
    cancel_post,
    create_post,
)
from scheduler.models import Channel, Delivery, DeliveryStatus
from tests.conftest import tick_and_publish

pytestmark = pytest.mark.django_db

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
# A Monday in summer: Berlin is UTC+2.
MONDAY_6_UTC = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(MONDAY_6_UTC, tick=False) as traveller:
        yield traveller


@pytest.fixture
def scheduled_channel(mastodon_channel: Channel) -> Channel:
    mastodon_channel.timezone = "Europe/Berlin"
    mastodon_channel.schedule = {day: ["09:00", "13:00"] for day in queue.WEEKDAYS}
    mastodon_channel.save()
    return mastodon_channel


def queue_post(membership, channel, text, *, first=False):
    post = create_post(
        membership,
        channels=[channel],
        parts=[PartInput(text)],
        at=None,
        queue=QUEUE_FIRST if first else QUEUE_LAST,
    )
    return post.deliveries.get()


def due_times(channel):
    return [(d.post.parts.get().text, d.due_at) for d in queue.queued(channel)]


def test_slots_keep_their_local_time_across_the_spring_dst_change(mastodon_channel):
    mastodon_channel.timezone = "Europe/Berlin"
    mastodon_channel.schedule = {"mon": ["09:00"]}
    slots = queue.slot_times(mastodon_channel, after=datetime(2026, 3, 20, tzinfo=UTC))

    first, second = next(slots), next(slots)

    # Clocks go forward on Sunday 29 March 2026: 09:00 is 08:00 UTC before, 07:00 UTC after.
    assert first == datetime(2026, 3, 23, 8, 0, tzinfo=UTC)
    assert second == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert [s.astimezone(BERLIN).hour for s in (first, second)] == [9, 9]


def test_slot_in_the_spring_forward_gap_happens_an_hour_later_on_the_clock(mastodon_channel):
    mastodon_channel.timezone = "Europe/Berlin"
    mastodon_channel.schedule = {"sun": ["02:30", "03:00"]}

    slots = list(queue.slot_times(mastodon_channel, after=datetime(2026, 3, 28, tzinfo=UTC)))[:2]

    # 02:30 does not exist that night; it happens at 03:30 CEST, after the 03:00 slot.
    assert slots == [
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
    ]


def test_slot_in_the_repeated_autumn_hour_happens_once(mastodon_channel):
    mastodon_channel.timezone = "Europe/Berlin"
    mastodon_channel.schedule = {"sun": ["02:30"]}

    slots = queue.slot_times(mastodon_channel, after=datetime(2026, 10, 24, tzinfo=UTC))

    assert next(slots) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30 (CEST)
    assert next(slots) == datetime(2026, 11, 1, 1, 30, tzinfo=UTC)  # a week later, CET


def test_add_to_queue_takes_the_next_free_slots_in_order(frozen, membership, scheduled_channel):
    queue_post(membership, scheduled_channel, "one")
    queue_post(membership, scheduled_channel, "two")
    third = queue_post(membership, scheduled_channel, "three")

    assert due_times(scheduled_channel) == [
        ("one", berlin(2026, 6, 1, 9, 0)),
        ("two", berlin(2026, 6, 1, 13, 0)),
        ("three", berlin(2026, 6, 2, 9, 0)),
    ]
    assert third.pinned is False
    assert third.status == DeliveryStatus.SCHEDULED
    assert third.next_attempt_at == third.due_at


def test_share_next_goes_first_and_moves_the_others_back_one_slot(
    frozen, membership, scheduled_channel
):
    queue_post(membership, scheduled_channel, "one")
    queue_post(membership, scheduled_channel, "two")

    queue_post(membership, scheduled_channel, "urgent", first=True)

    assert due_times(scheduled_channel) == [
        ("urgent", berlin(2026, 6, 1, 9, 0)),
        ("one", berlin(2026, 6, 1, 13, 0)),
        ("two", berlin(2026, 6, 2, 9, 0)),
    ]
    moved = Delivery.objects.get(post__parts__text="two")
    assert moved.next_attempt_at == berlin(2026, 6, 2, 9, 0)


def test_custom_time_post_on_a_slot_takes_it_and_never_moves(frozen, membership, scheduled_channel):
    pinned = create_post(
        membership,
        channels=[scheduled_channel],
        parts=[PartInput("at nine")],
        at=berlin(2026, 6, 1, 9, 0),
    ).deliveries.get()
    queue_post(membership, scheduled_channel, "queued")
    queue_post(membership, scheduled_channel, "next", first=True)

    pinned.refresh_from_db()
    assert pinned.pinned is True
    assert pinned.due_at == berlin(2026, 6, 1, 9, 0)
    assert due_times(scheduled_channel) == [
        ("next", berlin(2026, 6, 1, 13, 0)),
        ("queued", berlin(2026, 6, 2, 9, 0)),
    ]


def test_cancelling_a_queued_post_moves_the_later_ones_up(frozen, membership, scheduled_channel):
    first = queue_post(membership, scheduled_channel, "one")
    queue_post(membership, scheduled_channel, "two")
    queue_post(membership, scheduled_channel, "three")

    cancel_post(first.post)

    assert due_times(scheduled_channel) == [
        ("two", berlin(2026, 6, 1, 9, 0)),
        ("three", berlin(2026, 6, 1, 13, 0)),
    ]


def test_reorder_puts_the_listed_deliveries_first_and_keeps_the_rest_in_order(
    frozen, membership, scheduled_channel
):
    one = queue_post(membership, scheduled_channel, "one")
    queue_post(membership, scheduled_channel, "two")
    three = queue_post(membership, scheduled_channel, "three")

    queue.reorder(scheduled_channel, [three.pk])

    assert [text for text, _ in due_times(scheduled_channel)] == ["three", "one", "two"]
    assert [due for _, due in due_times(scheduled_channel)] == [
        berlin(2026, 6, 1, 9, 0),
        berlin(2026, 6, 1, 13, 0),
        berlin(2026, 6, 2, 9, 0),
    ]
    with pytest.raises(queue.QueueError, match="Not in this channel's queue"):
        queue.reorder(scheduled_channel, [one.pk, 999_999])


def test_shuffle_keeps_the_same_slots_in_a_new_order(frozen, membership, scheduled_channel):
    for n in range(6):
        queue_post(membership, scheduled_channel, f"post {n}")
    slots_before = [due for _, due in due_times(scheduled_channel)]

    queue.shuffle(scheduled_channel, rng=random.Random(4))

    after = due_times(scheduled_channel)
    assert [due for _, due in after] == slots_before
    assert [text for text, _ in after] != [f"post {n}" for n in range(6)]


def test_new_schedule_reflows_the_queue_onto_its_slots(frozen, membership, scheduled_channel):
    queue_post(membership, scheduled_channel, "one")
    queue_post(membership, scheduled_channel, "two")

    queue.set_schedule(
        scheduled_channel, timezone_name="America/New_York", slots={"tue": ["08:15"]}
    )

    new_york = zoneinfo.ZoneInfo("America/New_York")
    assert [(text, due.astimezone(new_york)) for text, due in due_times(scheduled_channel)] == [
        ("one", datetime(2026, 6, 2, 8, 15, tzinfo=new_york)),
        ("two", datetime(2026, 6, 9, 8, 15, tzinfo=new_york)),
    ]


def test_emptying_the_schedule_under_queued_posts_is_refused(frozen, membership, scheduled_channel):
    queue_post(membership, scheduled_channel, "one")

    with pytest.raises(queue.QueueError, match="only 0 free slots"):
        queue.set_schedule(scheduled_channel, timezone_name="UTC", slots={})

    scheduled_channel.refresh_from_db()
    assert scheduled_channel.timezone == "Europe/Berlin"
    assert scheduled_channel.schedule["mon"] == ["09:00", "13:00"]


def test_queueing_on_a_channel_without_slots_says_which_channel(membership, mastodon_channel):
    with pytest.raises(ComposeError) as raised:
        queue_post(membership, mastodon_channel, "nowhere to go")

    assert list(raised.value.errors) == [str(mastodon_channel.pk)]
    assert "no free posting slot" in raised.value.errors[str(mastodon_channel.pk)][0]
    assert not Delivery.objects.exists()


def test_invalid_slots_are_refused_with_the_reason():
    with pytest.raises(queue.QueueError, match="not a weekday"):
        queue.normalise_schedule({"tues": ["09:00"]})
    with pytest.raises(queue.QueueError, match="24-hour"):
        queue.normalise_schedule({"mon": ["9am"]})
    assert queue.normalise_schedule({"fri": ["17:00", "08:30", "17:00"], "mon": []}) == {
        "fri": ["08:30", "17:00"]
    }


def test_a_queued_post_is_published_at_its_slot(membership, scheduled_channel, fake_mastodon):
    with time_machine.travel(MONDAY_6_UTC, tick=False):
        delivery = queue_post(membership, scheduled_channel, "from the queue")

    assert tick_and_publish(berlin(2026, 6, 1, 8, 59)) == []
    assert tick_and_publish(berlin(2026, 6, 1, 9, 0)) == ["published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["from the queue"]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PUBLISHED


def test_reflow_leaves_a_delivery_the_dispatcher_already_claimed(
    frozen, membership, scheduled_channel
):
    first = queue_post(membership, scheduled_channel, "one")
    queue_post(membership, scheduled_channel, "two")
    Delivery.objects.filter(pk=first.pk).update(status=DeliveryStatus.PUBLISHING)

    queue.reflow(scheduled_channel)

    first.refresh_from_db()
    assert first.due_at == berlin(2026, 6, 1, 9, 0)
    assert due_times(scheduled_channel) == [("two", berlin(2026, 6, 1, 13, 0))]


def test_next_slots_skip_taken_ones(frozen, membership, scheduled_channel):
    queue_post(membership, scheduled_channel, "one")

    assert queue.next_slots(scheduled_channel, count=2) == [
        berlin(2026, 6, 1, 13, 0),
        berlin(2026, 6, 2, 9, 0),
    ]
    assert timedelta(0) < queue.next_slots(scheduled_channel, count=1)[0] - MONDAY_6_UTC

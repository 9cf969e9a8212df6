"""The calendar: ranges in the reader's zone, entries and open slots, filters, drag to reschedule."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from accounts.models import Role
from scheduler import calendar, queue
from scheduler.calendar import CalendarError, CalendarFilters, calendar_range, load_calendar
from scheduler.compose import QUEUE_LAST, PartInput, cancel_post, create_post
from scheduler.models import Activity, ActivityVerb, Delivery, DeliveryStatus
from tests.conftest import add_member, make_mastodon_channel, tick_and_publish
from tests.scheduler.test_queue import BERLIN, berlin

pytestmark = pytest.mark.django_db

# Wednesday 21 October 2026, 06:00 UTC; Berlin leaves summer time on Sunday 25 October.
BEFORE_AUTUMN_CHANGE = datetime(2026, 10, 21, 6, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(BEFORE_AUTUMN_CHANGE, tick=False) as traveller:
        yield traveller


def post_at(membership, channels, text, at, *, tags=None, draft=False):
    return create_post(
        membership, channels=channels, parts=[PartInput(text)], at=at, tags=tags, draft=draft
    )


def week(membership, around=date(2026, 10, 21), filters=None):
    period = calendar_range("week", around=around, zone_name="Europe/Berlin")
    return load_calendar(membership.workspace, period, filters or CalendarFilters())


def texts(page):
    return {
        day.day.isoformat(): [d.preview for d in day.entries] for day in page.days if day.entries
    }


# -- ranges ----------------------------------------------------------------------------------------
def test_week_across_the_autumn_change_has_one_25_hour_day():
    period = calendar_range("week", around=date(2026, 10, 21), zone_name="Europe/Berlin")

    assert period.days[0] == date(2026, 10, 19) and period.days[-1] == date(2026, 10, 25)
    assert period.start == datetime(2026, 10, 18, 22, 0, tzinfo=UTC)  # midnight CEST
    assert period.end == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)  # midnight CET
    assert period.end - period.start == timedelta(days=7, hours=1)
    assert (period.previous, period.next) == (date(2026, 10, 12), date(2026, 10, 26))


def test_month_is_whole_weeks_from_monday_holding_every_day_of_the_month():
    period = calendar_range("month", around=date(2027, 2, 14), zone_name="America/New_York")

    assert period.days[0] == date(2027, 2, 1)  # a Monday
    assert period.days[-1] == date(2027, 2, 28)  # a Sunday
    assert len(period.days) == 28
    assert (period.previous, period.next) == (date(2027, 1, 1), date(2027, 3, 1))
    march = calendar_range("month", around=date(2027, 3, 31), zone_name="UTC")
    assert march.days[0] == date(2027, 3, 1) and march.days[-1] == date(2027, 4, 4)


def test_unknown_view_or_zone_is_refused_with_a_reason():
    with pytest.raises(CalendarError, match="week or month"):
        calendar_range("year", around=date(2026, 1, 1), zone_name="UTC")
    with pytest.raises(CalendarError, match="IANA"):
        calendar_range("week", around=date(2026, 1, 1), zone_name="Mars/Olympus")


# -- entries and open slots ------------------------------------------------------------------------
def test_posts_fall_on_the_readers_local_day(frozen, membership, mastodon_channel):
    post_at(
        membership,
        [mastodon_channel],
        "late Thursday UTC",
        datetime(2026, 10, 22, 22, 30, tzinfo=UTC),
    )
    post_at(membership, [mastodon_channel], "Sunday night CET", berlin(2026, 10, 25, 23, 30))
    post_at(membership, [mastodon_channel], "next Monday", berlin(2026, 10, 26, 0, 30))

    page = week(membership)

    # 22:30 UTC on Thursday is 00:30 on Friday in Berlin; the 25-hour Sunday keeps 23:30 CET.
    assert texts(page) == {"2026-10-23": ["late Thursday UTC"], "2026-10-25": ["Sunday night CET"]}


def test_a_month_day_holds_its_first_entries_in_time_order_and_counts_all(
    frozen, membership, mastodon_channel
):
    def at(text, when):
        post_at(membership, [mastodon_channel], text, when)

    # Created out of time order; Sunday 25 October is Berlin's 25-hour day.
    at("ten, made first", berlin(2026, 10, 25, 10, 0))
    at("late Sunday", berlin(2026, 10, 25, 23, 30))  # 22:30 UTC, the day's last
    at("Monday", berlin(2026, 10, 26, 0, 30))  # 23:30 UTC on Sunday
    at("ten, made second", berlin(2026, 10, 25, 10, 0))
    at("one", berlin(2026, 10, 25, 1, 0))  # still summer time: 23:00 UTC on Saturday
    at("nine", berlin(2026, 10, 25, 9, 0))
    at("Saturday", berlin(2026, 10, 24, 23, 30))
    period = calendar_range("month", around=date(2026, 10, 1), zone_name="Europe/Berlin")

    page = load_calendar(membership.workspace, period, CalendarFilters(), per_day=3)

    shown = {
        day.day.isoformat(): ([d.preview for d in day.entries], day.total)
        for day in page.days
        if day.total
    }
    assert shown == {
        "2026-10-24": (["Saturday"], 1),
        "2026-10-25": (["one", "nine", "ten, made first"], 5),
        "2026-10-26": (["Monday"], 1),
    }
    assert page.entry_count == 7
    assert [d.preview for d in week(membership, around=date(2026, 10, 25)).days[6].entries] == [
        "one",
        "nine",
        "ten, made first",
        "ten, made second",
        "late Sunday",
    ]


@pytest.mark.parametrize("zone_name", ["Etc/GMT+10", "Etc/GMT-14", "Pacific/Kiritimati"])
def test_a_month_counts_days_in_zones_with_two_digit_offsets(
    frozen, membership, mastodon_channel, zone_name
):
    """The database counts each day in the reader's zone, including the fixed-offset zones whose
    names look like offsets (Etc/GMT+10 is UTC-10; Etc/GMT-14, like Kiritimati, is UTC+14)."""
    zone = zoneinfo.ZoneInfo(zone_name)
    for hour in (0, 12, 23):
        post_at(
            membership, [mastodon_channel], f"{hour}h", datetime(2026, 10, 28, hour, tzinfo=zone)
        )
    period = calendar_range("month", around=date(2026, 10, 1), zone_name=zone_name)

    page = load_calendar(membership.workspace, period, CalendarFilters(), per_day=2)

    shown = {
        day.day.isoformat(): ([d.preview for d in day.entries], day.total)
        for day in page.days
        if day.total
    }
    assert shown == {"2026-10-28": (["0h", "12h"], 3)}


def test_open_slots_keep_their_local_time_across_the_change(frozen, membership, mastodon_channel):
    mastodon_channel.timezone = "Europe/Berlin"
    mastodon_channel.schedule = {day: ["09:00"] for day in queue.WEEKDAYS}
    mastodon_channel.save()
    post_at(membership, [mastodon_channel], "on the Friday slot", berlin(2026, 10, 23, 9, 0))

    page = week(membership)

    slots = [slot.at for day in page.days for slot in day.open_slots]
    # Now is 08:00 in Berlin, so Wednesday's 09:00 is still ahead; Friday's is taken.
    assert [s.astimezone(BERLIN).strftime("%a %H:%M") for s in slots] == [
        "Wed 09:00",
        "Thu 09:00",
        "Sat 09:00",
        "Sun 09:00",
    ]
    assert [s.hour for s in slots] == [7, 7, 7, 8]  # UTC: summer time, then winter time


def test_filters_by_channel_network_status_and_tag(
    frozen, membership, mastodon_channel, fake_mastodon, bluesky_channel
):
    second = make_mastodon_channel(membership.workspace, fake_mastodon, remote_id="2")
    at = berlin(2026, 10, 22, 10, 0)
    post_at(membership, [mastodon_channel], "launch", at, tags=["launch"])
    post_at(membership, [second], "second account", at)
    post_at(membership, [bluesky_channel], "sky", at)
    post_at(membership, [mastodon_channel], "a draft", at, draft=True)
    cancel_post(post_at(membership, [mastodon_channel], "cancelled", at))

    def shown(**filters):
        return sorted(
            d.preview
            for day in week(membership, filters=CalendarFilters(**filters)).days
            for d in day.entries
        )

    assert shown() == ["a draft", "launch", "second account", "sky"]
    assert shown(channels=frozenset({second.pk})) == ["second account"]
    assert shown(networks=frozenset({"bluesky"})) == ["sky"]
    assert shown(statuses=frozenset({"draft"})) == ["a draft"]
    assert shown(statuses=frozenset({"cancelled"})) == ["cancelled"]
    assert shown(tag="launch") == ["launch"]
    assert shown(networks=frozenset({"mastodon"}), statuses=frozenset({"scheduled"})) == [
        "launch",
        "second account",
    ]


def test_other_workspaces_posts_never_show(
    frozen, membership, mastodon_channel, bob, other_workspace, fake_mastodon
):
    from accounts.models import Membership

    theirs = make_mastodon_channel(other_workspace, fake_mastodon, remote_id="99")
    bobs = Membership.objects.get(user=bob)
    post_at(bobs, [theirs], "Globex secret", berlin(2026, 10, 22, 10, 0))

    assert texts(week(membership)) == {}


def test_query_count_does_not_grow_with_posts(
    frozen, membership, mastodon_channel, django_assert_num_queries
):
    mastodon_channel.schedule = {"mon": ["09:00"], "fri": ["17:00"]}
    mastodon_channel.save()
    post_at(membership, [mastodon_channel], "one", berlin(2026, 10, 22, 10, 0))
    with django_assert_num_queries(3):
        assert week(membership).entry_count == 1
    for n in range(20):
        post_at(membership, [mastodon_channel], f"post {n}", berlin(2026, 10, 23, 10, n))
    with django_assert_num_queries(3):
        assert week(membership).entry_count == 21


# -- reschedule by drag ----------------------------------------------------------------------------
def test_moving_a_post_changes_its_due_time_and_it_publishes_then(
    frozen, membership, mastodon_channel, fake_mastodon
):
    delivery = post_at(
        membership, [mastodon_channel], "move me", berlin(2026, 10, 22, 10, 0)
    ).deliveries.get()

    moved = calendar.reschedule_delivery(membership, delivery.pk, at=berlin(2026, 10, 24, 15, 0))

    assert (moved.due_at, moved.next_attempt_at) == (berlin(2026, 10, 24, 15, 0),) * 2
    entry = Activity.objects.get(verb=ActivityVerb.RESCHEDULED)
    assert (entry.actor, entry.post_id, entry.channel) == (
        membership.user,
        delivery.post_id,
        mastodon_channel,
    )
    assert entry.changes["to"] == berlin(2026, 10, 24, 15, 0).isoformat()
    frozen.move_to(berlin(2026, 10, 22, 10, 0) + timedelta(minutes=1))
    assert tick_and_publish() == []
    frozen.move_to(berlin(2026, 10, 24, 15, 0))
    assert tick_and_publish() == ["published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["move me"]


def test_moving_a_queued_post_pins_it_and_the_queue_moves_up(frozen, membership, mastodon_channel):
    mastodon_channel.timezone = "Europe/Berlin"
    mastodon_channel.schedule = {day: ["09:00"] for day in queue.WEEKDAYS}
    mastodon_channel.save()
    first, second = (
        create_post(
            membership, channels=[mastodon_channel], parts=[PartInput(t)], at=None, queue=QUEUE_LAST
        ).deliveries.get()
        for t in ("first", "second")
    )
    assert second.due_at == berlin(2026, 10, 22, 9, 0)

    calendar.reschedule_delivery(membership, first.pk, at=berlin(2026, 10, 30, 12, 0))

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.pinned and first.due_at == berlin(2026, 10, 30, 12, 0)
    assert second.due_at == berlin(2026, 10, 21, 9, 0)  # took the freed slot


def test_published_or_publishing_posts_cannot_be_moved(
    frozen, membership, mastodon_channel, fake_mastodon
):
    delivery = post_at(
        membership, [mastodon_channel], "gone", berlin(2026, 10, 21, 8, 0, 30)
    ).deliveries.get()
    frozen.move_to(berlin(2026, 10, 21, 8, 1))
    assert tick_and_publish() == ["published"]

    with pytest.raises(CalendarError, match="cannot be moved: It is already published"):
        calendar.reschedule_delivery(membership, delivery.pk, at=berlin(2026, 10, 24, 9, 0))
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PUBLISHING)
    with pytest.raises(CalendarError, match="being published right now"):
        calendar.reschedule_delivery(membership, delivery.pk, at=berlin(2026, 10, 24, 9, 0))
    assert Delivery.objects.get(pk=delivery.pk).due_at == berlin(2026, 10, 21, 8, 0, 30)


def test_moving_to_the_past_or_by_a_viewer_or_another_author_is_refused(
    frozen, membership, mastodon_channel, workspace
):
    delivery = post_at(
        membership, [mastodon_channel], "mine", berlin(2026, 10, 22, 10, 0)
    ).deliveries.get()
    with pytest.raises(CalendarError, match="has passed"):
        calendar.reschedule_delivery(membership, delivery.pk, at=berlin(2026, 10, 20, 10, 0))
    viewer = add_member(workspace, "viv@example.com", Role.VIEWER)
    with pytest.raises(CalendarError, match="Viewers cannot move posts"):
        calendar.reschedule_delivery(viewer, delivery.pk, at=berlin(2026, 10, 23, 10, 0))
    contributor = add_member(workspace, "cory@example.com", Role.CONTRIBUTOR)
    with pytest.raises(CalendarError, match="only their own posts"):
        calendar.reschedule_delivery(contributor, delivery.pk, at=berlin(2026, 10, 23, 10, 0))
    assert Delivery.objects.get(pk=delivery.pk).due_at == berlin(2026, 10, 22, 10, 0)


def test_a_delivery_of_another_workspace_is_not_found(
    frozen, membership, bob, other_workspace, fake_mastodon
):
    from accounts.models import Membership

    bobs = Membership.objects.get(user=bob)
    theirs = make_mastodon_channel(other_workspace, fake_mastodon, remote_id="99")
    delivery = post_at(bobs, [theirs], "Globex", berlin(2026, 10, 22, 10, 0)).deliveries.get()

    with pytest.raises(Delivery.DoesNotExist):
        calendar.reschedule_delivery(membership, delivery.pk, at=berlin(2026, 10, 23, 10, 0))

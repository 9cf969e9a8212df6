"""The content calendar in Chromium: drag to reschedule (published by the real worker), the Move
dialog, a week across a daylight-saving change, filters; axe-core, phone width, screenshots."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from scheduler.compose import PartInput, create_post
from scheduler.models import Delivery, DeliveryStatus
from tests.browser.conftest import check_page

pytestmark = pytest.mark.e2e
# Any zone will do for the reader; these three cover every weekday at any moment.
READER_ZONES = ("UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago")


def post(membership, channels, text, at, **kwargs):
    return create_post(membership, channels=channels, parts=[PartInput(text)], at=at, **kwargs)


def zone_where_tomorrow_is_this_week(now: datetime) -> zoneinfo.ZoneInfo:
    """A zone whose today is not a Sunday and stays today for the next minute."""
    for name in READER_ZONES:
        zone = zoneinfo.ZoneInfo(name)
        local = now.astimezone(zone)
        if local.weekday() != 6 and (local + timedelta(minutes=1)).date() == local.date():
            return zone
    raise AssertionError("no reader zone fits")  # cannot happen: the zones span 25 hours


def test_dragging_a_post_to_today_moves_its_delivery_and_it_publishes_then(
    celery_processes, page, log_in, alice, membership, mastodon_channel, fake_mastodon
):
    now = timezone.now()
    zone = zone_where_tomorrow_is_this_week(now)
    alice.timezone = zone.key
    alice.save()
    soon = (now + timedelta(seconds=25)).replace(microsecond=0)
    delivery = post(
        membership, [mastodon_channel], "Dragged to today", soon + timedelta(days=1)
    ).deliveries.get()
    log_in(page, alice)

    page.goto("/calendar/")
    expect(page.locator(".cal-day.is-today")).to_contain_text("Today")
    chip = page.locator(".chip", has_text="Dragged to today")
    expect(chip).to_have_attribute("draggable", "true")
    chip.drag_to(page.locator(".cal-day.is-today"))

    expect(page.get_by_role("status")).to_contain_text("Moved to")
    expect(page.locator(".cal-day.is-today .chip", has_text="Dragged to today")).to_be_visible()
    delivery.refresh_from_db()
    assert delivery.due_at == delivery.next_attempt_at == soon
    published = celery_processes.wait_for(
        lambda: Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PUBLISHED).first(),
        timeout=60,
        what="the moved post to be published",
    )
    assert published.published_at >= soon
    assert [s["text"] for s in fake_mastodon.statuses] == ["Dragged to today"]
    page.reload()
    expect(page.locator(".chip", has_text="Dragged to today")).to_contain_text("Published")
    expect(page.locator(".chip", has_text="Dragged to today")).not_to_have_attribute(
        "draggable", "true"
    )


def test_week_across_the_spring_change_keeps_local_times(
    page, log_in, alice, membership, mastodon_channel
):
    alice.timezone = "Europe/Berlin"
    alice.save()
    mastodon_channel.timezone = "Europe/Berlin"
    mastodon_channel.schedule = {day: ["09:00"] for day in ("sat", "sun", "mon")}
    mastodon_channel.save()
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    # Clocks go forward on Sunday 31 March 2030: 10:00 is 09:00 UTC on Saturday, 08:00 on Sunday.
    saturday = post(
        membership, [mastodon_channel], "Saturday ten", datetime(2030, 3, 30, 10, tzinfo=berlin)
    )
    sunday = post(
        membership, [mastodon_channel], "Sunday ten", datetime(2030, 3, 31, 10, tzinfo=berlin)
    )
    assert saturday.deliveries.get().due_at == datetime(2030, 3, 30, 9, tzinfo=UTC)
    assert sunday.deliveries.get().due_at == datetime(2030, 3, 31, 8, tzinfo=UTC)
    log_in(page, alice)

    page.goto("/calendar/?view=week&date=2030-03-27")

    expect(page.locator(".cal-title")).to_have_text("25 Mar \u2013 31 Mar 2030")
    expect(page.locator(".cal-zone")).to_contain_text("Europe/Berlin")
    for day, text in (("Sat 30 Mar", "Saturday ten"), ("Sun 31 Mar", "Sunday ten")):
        column = page.locator(".cal-day", has_text=day)
        expect(column.locator(".chip .chip-time")).to_have_text("10:00")
        expect(column.locator(".chip")).to_contain_text(text)
        expect(column.locator(".slot .chip-time")).to_have_text("09:00")
    check_page(page, "calendar-week")


def test_filters_month_view_and_the_move_dialog(
    page, log_in, alice, membership, mastodon_channel, bluesky_channel
):
    alice.timezone = "Europe/Berlin"
    alice.save()
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    post(
        membership,
        [mastodon_channel],
        "Mastodon launch",
        datetime(2030, 6, 12, 9, tzinfo=berlin),
        tags=["launch"],
    )
    post(membership, [bluesky_channel], "Bluesky teaser", datetime(2030, 6, 13, 15, tzinfo=berlin))
    post(
        membership,
        [mastodon_channel, bluesky_channel],
        "Both, draft",
        datetime(2030, 6, 14, 11, tzinfo=berlin),
        draft=True,
    )
    log_in(page, alice)

    page.goto("/calendar/?view=month&date=2030-06-01")
    expect(page.locator(".cal-title")).to_have_text("June 2030")
    expect(page.locator(".chip")).to_have_count(4)
    check_page(page, "calendar-month")
    page.get_by_label("Network").select_option("bluesky")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".chip")).to_have_count(2)
    expect(page.locator(".chip", has_text="Mastodon launch")).to_have_count(0)
    page.get_by_label("Status").select_option("draft")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".chip")).to_have_count(1)
    page.get_by_role("link", name="Clear filters").click()
    page.get_by_label("Tag").fill("launch")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".chip")).to_have_count(1)
    expect(page.locator(".chip")).to_contain_text("Mastodon launch")

    # The keyboard alternative to dragging: the Move dialog on the week view.
    page.goto("/calendar/?view=week&date=2030-06-12")
    page.locator(".chip", has_text="Bluesky teaser").get_by_role("button", name="Move").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Move post")
    expect(dialog).to_be_visible()
    dialog.get_by_label("New date and time").fill("2030-06-16T18:30")
    dialog.get_by_label("New date and time").press("Enter")
    expect(page.get_by_role("status")).to_contain_text(
        "Moved to Sun 16 Jun, 18:30 (Europe/Berlin)."
    )
    moved = Delivery.objects.get(post__parts__text="Bluesky teaser")
    assert moved.due_at == datetime(2030, 6, 16, 18, 30, tzinfo=berlin)
    expect(page.locator(".cal-day", has_text="Sun 16 Jun").locator(".chip")).to_contain_text(
        "Bluesky teaser"
    )


def test_feed_settings_turn_on_copy_and_turn_off(page, log_in, alice):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, alice)
    page.goto("/calendar/")
    page.get_by_role("link", name="Subscribe in a calendar app").click()
    page.get_by_role("button", name="Turn the feed on").click()
    expect(page.get_by_role("status").first).to_contain_text("Feed turned on")
    address = page.get_by_label("Your private feed address")
    url = address.input_value()
    assert url.startswith("http") and url.endswith(".ics")
    page.get_by_role("button", name="Copy address").click()
    expect(page.locator("[data-copy-result]")).to_have_text("Address copied.")
    assert page.evaluate("navigator.clipboard.readText()") == url
    check_page(page, "calendar-feed")
    page.get_by_role("button", name="Turn the feed off").click()
    expect(page.get_by_role("button", name="Turn the feed on")).to_be_visible()
    assert page.request.get(urlsplit(url).path).status == 404

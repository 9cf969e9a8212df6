"""Posting schedule and queue pages in Chromium: set slots, see queued times, reorder, re-flow."""

from __future__ import annotations

import zoneinfo

import pytest
from playwright.sync_api import Page, expect

from scheduler import queue
from scheduler.compose import QUEUE_LAST, PartInput, create_post
from tests.browser.conftest import check_page

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture
def berlin_alice(alice):
    alice.timezone = "Europe/Berlin"
    alice.save()
    return alice


def shown_times(page: Page) -> list[str]:
    return [
        " ".join(text.split()[1:])  # drop the "#n" position
        for text in page.locator(".queue-list .queue-when").all_inner_texts()
    ]


def db_times(channel) -> list[str]:
    return [f"{d.due_at.astimezone(BERLIN):%a %-d %b %H:%M}" for d in queue.queued(channel)]


def db_texts(channel) -> list[str]:
    return [d.post.parts.get().text for d in queue.queued(channel)]


def test_set_slots_queue_reorder_and_reflow(
    page, log_in, berlin_alice, membership, mastodon_channel
):
    channel = mastodon_channel
    log_in(page, berlin_alice)
    page.goto(f"/schedule/{channel.pk}/")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_role("button", name="Save time zone").click()
    expect(page.get_by_role("status")).to_contain_text("Time zone set to Europe/Berlin")
    for value in ("09:00", "13:00"):
        page.get_by_label("New time on Monday").fill(value)
        page.get_by_role("button", name="Add time on Monday").click()
        expect(page.get_by_role("status")).to_contain_text(f"Added {value} on Monday")
    page.get_by_text("Copy to other days (Monday)").click()
    for day in ("Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
        page.get_by_role("checkbox", name=day).check()
    page.get_by_role("button", name="Copy Monday's times").click()
    expect(page.get_by_role("status")).to_contain_text("Copied Monday's times to Tuesday")
    channel.refresh_from_db()
    assert channel.schedule == {day: ["09:00", "13:00"] for day in queue.WEEKDAYS}
    check_page(page, "schedule")

    for text in ("Alpha launch", "Beta follow-up", "Gamma recap"):
        create_post(
            membership, channels=[channel], parts=[PartInput(text)], at=None, queue=QUEUE_LAST
        )
    page.goto(f"/queue/{channel.pk}/")
    expect(page.locator(".queue-item")).to_have_count(3)
    assert page.locator(".queue-text").all_inner_texts() == [
        "Alpha launch",
        "Beta follow-up",
        "Gamma recap",
    ]
    slots = db_times(channel)
    assert shown_times(page) == slots
    check_page(page, "queue")

    # Keyboard: focus Alpha's "Down" and press Enter; it takes the second slot, focus stays on it.
    alpha = page.locator(".queue-item", has_text="Alpha launch")
    alpha.get_by_role("button", name="Down").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Moved to position 2 of 3")
    assert db_texts(channel) == ["Beta follow-up", "Alpha launch", "Gamma recap"]
    assert db_times(channel) == slots  # same slots, new order
    alpha_row = page.locator(".queue-item", has_text="Alpha launch").locator(".queue-when")
    assert " ".join(alpha_row.inner_text().split()[1:]) == slots[1]  # Alpha now goes out second
    assert page.locator(".queue-text").all_inner_texts() == db_texts(channel)
    expect(
        page.locator(".queue-item", has_text="Alpha launch").get_by_role("button", name="Down")
    ).to_be_focused()

    # Drag: Gamma's handle onto the first row.
    gamma_handle = page.locator(".queue-item", has_text="Gamma recap").locator(".drag-handle")
    first_row = page.locator(".queue-item").first
    gamma_handle.hover()
    page.mouse.down()
    box = first_row.bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 5, steps=12)
    page.mouse.up()
    expect(page.get_by_role("status")).to_contain_text("Reordered")
    assert db_texts(channel) == ["Gamma recap", "Beta follow-up", "Alpha launch"]
    assert page.locator(".queue-text").all_inner_texts() == db_texts(channel)
    assert shown_times(page) == slots

    # Removing Monday-to-Sunday 09:00 re-flows the queue onto the 13:00 slots, shown at once.
    page.goto(f"/schedule/{channel.pk}/")
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
        page.get_by_role("button", name=f"Remove 09:00 on {day}").click()
        expect(page.get_by_role("status")).to_contain_text(f"Removed 09:00 from {day}")
    new_times = db_times(channel)
    assert all(t.endswith("13:00") for t in new_times)
    assert [
        " ".join(t.split()) for t in page.locator(".reflow-list .queue-when").all_inner_texts()
    ] == new_times


def queue_abc(membership, channel) -> None:
    channel.schedule = {day: ["09:00", "13:00"] for day in queue.WEEKDAYS}
    channel.save()
    for text in ("Alpha launch", "Beta follow-up", "Gamma recap"):
        create_post(
            membership, channels=[channel], parts=[PartInput(text)], at=None, queue=QUEUE_LAST
        )


def test_top_up_and_remove_buttons_swap_the_queue_in_place(
    page, log_in, berlin_alice, membership, mastodon_channel
):
    channel = mastodon_channel
    queue_abc(membership, channel)
    log_in(page, berlin_alice)
    page.goto(f"/queue/{channel.pk}/")

    gamma = page.locator(".queue-item", has_text="Gamma recap")
    gamma.get_by_role("button", name="Top (move post #3 first)").click()
    expect(page.get_by_role("status")).to_contain_text("Moved to position 1 of 3")
    assert db_texts(channel) == ["Gamma recap", "Alpha launch", "Beta follow-up"]
    beta = page.locator(".queue-item", has_text="Beta follow-up")
    beta.get_by_role("button", name="Up (move post #3 earlier)").click()
    expect(page.get_by_role("status")).to_contain_text("Moved to position 2 of 3")
    expect(beta.get_by_role("button", name="Up")).to_be_focused()

    page.once("dialog", lambda dialog: dialog.accept())
    gamma.get_by_role("button", name="Remove post #1").click()
    expect(page.get_by_role("status")).to_contain_text("Removed from")
    expect(page.locator(".queue-item")).to_have_count(2)
    assert db_texts(channel) == ["Beta follow-up", "Alpha launch"]
    assert page.locator(".queue-text").all_inner_texts() == db_texts(channel)


def test_queue_buttons_work_without_javascript(
    chromium, live_server, log_in, berlin_alice, membership, mastodon_channel
):
    channel = mastodon_channel
    queue_abc(membership, channel)
    context = chromium.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        tab = context.new_page()
        log_in(tab, berlin_alice)
        tab.goto(f"/queue/{channel.pk}/")

        tab.locator(".queue-item", has_text="Gamma recap").get_by_role("button", name="Up").click()
        expect(tab.locator(".messages")).to_contain_text("Moved to position 2 of 3")
        assert db_texts(channel) == ["Alpha launch", "Gamma recap", "Beta follow-up"]
        alpha = tab.locator(".queue-item", has_text="Alpha launch")
        alpha.get_by_role("button", name="Remove").click()
        expect(tab.locator(".messages")).to_contain_text("Removed from")
        assert db_texts(channel) == ["Gamma recap", "Beta follow-up"]
        assert tab.locator(".queue-text").all_inner_texts() == db_texts(channel)
    finally:
        context.close()

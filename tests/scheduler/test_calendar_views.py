"""The calendar, queue, posting-schedule and feed pages, through Django's test client."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
import time_machine

from accounts.models import Role
from scheduler import queue
from scheduler.compose import QUEUE_LAST, PartInput, create_post
from scheduler.models import CalendarFeed, ChannelStatus, Delivery, DeliveryStatus
from tests.conftest import PASSWORD, add_member
from tests.scheduler.test_queue import berlin

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def frozen():
    # Monday 1 June 2026, 08:00 in Berlin.
    with time_machine.travel(datetime(2026, 6, 1, 6, 0, tzinfo=UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture
def browser(client, alice):
    alice.timezone = "Europe/Berlin"
    alice.save()
    client.login(email=alice.email, password=PASSWORD)
    return client


@pytest.fixture
def channel(mastodon_channel):
    mastodon_channel.timezone = "Europe/Berlin"
    mastodon_channel.schedule = {day: ["09:00", "17:00"] for day in queue.WEEKDAYS}
    mastodon_channel.save()
    return mastodon_channel


def queue_three(membership, channel):
    return [
        create_post(
            membership, channels=[channel], parts=[PartInput(text)], at=None, queue=QUEUE_LAST
        ).deliveries.get()
        for text in ("apple", "banana", "cherry")
    ]


class PageForms(HTMLParser):
    """A page's forms (address and hidden fields) and buttons (by id: attributes, and the form
    they submit: the one their `form` attribute names, else the one around them)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.buttons: dict[str, dict] = {}
        self._ids: dict[str, int] = {}
        self._open: int | None = None
        self._named: list[tuple[str, tuple[str, str]]] = []  # fields of a form named by id
        self.feed(html)
        for form_id, field in self._named:
            self.forms[self._ids[form_id]]["fields"].append(field)
        for button in self.buttons.values():
            if "form" in button:
                button["owner"] = self._ids[button["form"]]

    def handle_starttag(self, tag, attrs):
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._open = len(self.forms)
            self._ids[found.get("id", "")] = self._open
            self.forms.append({"action": found["action"], "fields": []})
        elif tag == "input" and found.get("type") == "hidden":
            field = (found["name"], found["value"])
            if "form" in found:
                self._named.append((found["form"], field))
            elif self._open is not None:
                self.forms[self._open]["fields"].append(field)
        elif tag == "button" and "id" in found:
            self.buttons[found["id"]] = {"owner": self._open, **found}

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def press(client, page, button_id, **headers):
    """Post what a browser posts when the button is pressed: its form's fields and its own
    name=value if it has a name, to its form's address. Follows a plain post's redirect."""
    forms = PageForms(page.content.decode())
    button = forms.buttons[button_id]
    assert "disabled" not in button
    form = forms.forms[button["owner"]]
    pressed = [(button["name"], button["value"])] if "name" in button else []
    data: dict[str, list[str]] = {}
    for name, value in [*form["fields"], *pressed]:
        data.setdefault(name, []).append(value)
    return client.post(form["action"], data, follow=True, **headers)


def queue_texts(channel):
    return [
        (d.post.parts.get().text, d.due_at.astimezone(berlin(2026, 1, 1).tzinfo))
        for d in queue.queued(channel)
    ]


# -- calendar --------------------------------------------------------------------------------------
def test_week_page_shows_posts_slots_zone_and_today(frozen, browser, membership, channel):
    create_post(
        membership,
        channels=[channel],
        parts=[PartInput("Hello Tuesday")],
        at=berlin(2026, 6, 2, 11, 15),
    )

    page = browser.get("/calendar/").content.decode()

    assert "Europe/Berlin" in page
    assert "Hello Tuesday" in page and ">11:15<" in page
    assert 'aria-current="date">Today' in page
    # Monday's 09:00 slot is open and links to the composer for that moment and channel.
    assert f"/compose/?at=2026-06-01T09%3A00&amp;channel={channel.pk}" in page


def test_month_page_and_filters(frozen, browser, membership, channel):
    create_post(
        membership,
        channels=[channel],
        parts=[PartInput("tagged")],
        at=berlin(2026, 6, 20, 10, 0),
        tags=["launch"],
    )
    create_post(
        membership, channels=[channel], parts=[PartInput("untagged")], at=berlin(2026, 6, 21, 10, 0)
    )

    page = browser.get("/calendar/?view=month&date=2026-06-10").content.decode()
    filtered = browser.get("/calendar/?view=month&date=2026-06-10&tag=launch").content.decode()

    assert "June 2026" in page and "tagged" in page and "untagged" in page
    assert "tagged" in filtered and "untagged" not in filtered and "Clear filters" in filtered


def test_month_cell_shows_its_first_three_posts_and_counts_the_rest(
    frozen, browser, alice, membership, channel
):
    alice.timezone = "America/New_York"  # UTC-4 in June: 23:30 there is 03:30 UTC next day
    alice.save()
    new_york = zoneinfo.ZoneInfo("America/New_York")
    for text, day, hour, minute in [  # made out of time order
        ("noon", 18, 12, 0),
        ("late Wednesday", 17, 23, 30),
        ("late Thursday", 18, 23, 30),
        ("nine, made first", 18, 9, 0),
        ("nine, made second", 18, 9, 0),
        ("eight", 18, 8, 0),
        ("just after midnight", 19, 0, 15),
    ]:
        at = datetime(2026, 6, day, hour, minute, tzinfo=new_york)
        create_post(membership, channels=[channel], parts=[PartInput(text)], at=at)

    page = browser.get("/calendar/?view=month&date=2026-06-10").content.decode()

    def cell(day):
        start = page.index(f'data-drop-day="{day}"')
        html = page[start : page.index('<li class="cal-cell', start)]
        return re.findall(r'chip-time">([\d:]+)</span> <span class="chip-text">([^<]*)<', html), (
            re.findall(r"\+(\d+) more", html)
        )

    assert cell("2026-06-17") == ([("23:30", "late Wednesday")], [])
    assert cell("2026-06-18") == (
        [("08:00", "eight"), ("09:00", "nine, made first"), ("09:00", "nine, made second")],
        ["2"],
    )
    assert cell("2026-06-19") == ([("00:15", "just after midnight")], [])
    assert "7 posts shown" in page


def test_dropping_a_post_on_another_day_keeps_its_time_of_day(frozen, browser, membership, channel):
    delivery = create_post(
        membership, channels=[channel], parts=[PartInput("move me")], at=berlin(2026, 6, 2, 11, 15)
    ).deliveries.get()

    response = browser.post(
        "/calendar/move/?view=week", {"delivery": delivery.pk, "day": "2026-06-04"}, **HTMX
    )

    assert response.status_code == 200
    assert "Moved to Thu 4 Jun, 11:15 (Europe/Berlin)." in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.due_at == delivery.next_attempt_at == berlin(2026, 6, 4, 11, 15)


def test_dropping_across_the_spring_change_keeps_the_wall_clock_time(
    frozen, browser, membership, channel
):
    delivery = create_post(
        membership, channels=[channel], parts=[PartInput("ten")], at=berlin(2030, 3, 30, 10, 0)
    ).deliveries.get()

    browser.post("/calendar/move/", {"delivery": delivery.pk, "day": "2030-03-31"}, **HTMX)

    delivery.refresh_from_db()
    # 10:00 CET is 09:00 UTC on Saturday; 10:00 CEST is 08:00 UTC on Sunday.
    assert delivery.due_at == datetime(2030, 3, 31, 8, 0, tzinfo=UTC)


def test_moving_a_published_post_is_refused_where_the_user_sees_it(
    frozen, browser, membership, channel
):
    delivery = create_post(
        membership, channels=[channel], parts=[PartInput("out")], at=berlin(2026, 6, 2, 11, 15)
    ).deliveries.get()
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PUBLISHED)

    response = browser.post(
        "/calendar/move/", {"delivery": delivery.pk, "at": "2026-06-05T10:00"}, **HTMX
    )
    plain = browser.post(
        "/calendar/move/", {"delivery": delivery.pk, "at": "2026-06-05T10:00"}, follow=True
    )

    assert (
        'role="alert">This post cannot be moved: It is already published.'
        in response.content.decode()
    )
    assert "This post cannot be moved" in plain.content.decode()
    assert Delivery.objects.get(pk=delivery.pk).due_at == berlin(2026, 6, 2, 11, 15)


# -- queue -----------------------------------------------------------------------------------------
def test_queue_page_lists_posts_with_their_slots_and_the_next_gaps(
    frozen, browser, membership, channel
):
    queue_three(membership, channel)
    create_post(
        membership,
        channels=[channel],
        parts=[PartInput("pinned plum")],
        at=berlin(2026, 6, 3, 9, 0),
    )

    page = browser.get(f"/queue/{channel.pk}/").content.decode()

    assert page.index("apple") < page.index("banana") < page.index("cherry")
    assert "Next empty slots" in page and "Add a post here" in page
    assert "at their own times" in page and "pinned plum" in page
    assert page.index("cherry") < page.index("pinned plum")
    assert "times in <strong>Europe/Berlin</strong>" in page


def test_keyboard_moves_and_drag_order_change_the_slots(frozen, browser, membership, channel):
    first, second, third = queue_three(membership, channel)

    browser.post(f"/queue/{channel.pk}/move/", {"delivery": third.pk, "to": "top"}, **HTMX)
    assert [t for t, _ in queue_texts(channel)] == ["cherry", "apple", "banana"]
    response = browser.post(
        f"/queue/{channel.pk}/move/", {"delivery": first.pk, "to": "down"}, **HTMX
    )
    assert "Moved to position 3 of 3." in response.content.decode()
    browser.post(
        f"/queue/{channel.pk}/reorder/", {"order": [second.pk, first.pk, third.pk]}, **HTMX
    )

    assert queue_texts(channel) == [
        ("banana", berlin(2026, 6, 1, 9, 0)),
        ("apple", berlin(2026, 6, 1, 17, 0)),
        ("cherry", berlin(2026, 6, 2, 9, 0)),
    ]


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["plain form post", "htmx"])
def test_row_buttons_move_and_remove_through_the_page_forms(
    frozen, browser, membership, channel, headers
):
    apple, banana, cherry = queue_three(membership, channel)
    page = browser.get(f"/queue/{channel.pk}/")

    page = press(browser, page, f"q{cherry.pk}-up", **headers)
    assert "Moved to position 2 of 3." in page.content.decode()
    assert [t for t, _ in queue_texts(channel)] == ["apple", "cherry", "banana"]
    page = press(browser, page, f"q{banana.pk}-top", **headers)
    assert [t for t, _ in queue_texts(channel)] == ["banana", "apple", "cherry"]
    page = press(browser, page, f"q{banana.pk}-down", **headers)
    assert [t for t, _ in queue_texts(channel)] == ["apple", "banana", "cherry"]
    page = press(browser, page, f"q{apple.pk}-remove", **headers)

    assert "Removed from" in page.content.decode()
    assert queue_texts(channel) == [
        ("banana", berlin(2026, 6, 1, 9, 0)),
        ("cherry", berlin(2026, 6, 1, 17, 0)),
    ]
    assert Delivery.objects.get(pk=apple.pk).status == DeliveryStatus.CANCELLED
    assert page.redirect_chain == ([] if headers else [(f"/queue/{channel.pk}/", 302)])


@pytest.mark.parametrize("value", ["abc", "²", "1" * 40, "-1", ""])
@pytest.mark.parametrize("action", ["move", "remove"])
def test_move_or_remove_of_no_post_id_says_so_and_changes_nothing(
    frozen, browser, membership, channel, action, value
):
    queue_three(membership, channel)
    before = queue_texts(channel)
    url = f"/queue/{channel.pk}/{action}/"

    swapped = browser.post(url, {"delivery": value, "to": "up"}, **HTMX)
    plain = browser.post(url, {"delivery": value, "to": "up"}, follow=True)

    problem = "That is not a post of this queue; reload the page and try again."
    assert swapped.status_code == 200 and f'role="alert">{problem}' in swapped.content.decode()
    assert plain.status_code == 200 and problem in plain.content.decode()
    assert queue_texts(channel) == before


def test_remove_shuffle_pause_and_resume(frozen, browser, membership, channel):
    first, *_ = queue_three(membership, channel)

    browser.post(f"/queue/{channel.pk}/remove/", {"delivery": first.pk}, **HTMX)
    assert queue_texts(channel) == [
        ("banana", berlin(2026, 6, 1, 9, 0)),
        ("cherry", berlin(2026, 6, 1, 17, 0)),
    ]
    assert Delivery.objects.get(pk=first.pk).status == DeliveryStatus.CANCELLED
    assert "Shuffled" in browser.post(f"/queue/{channel.pk}/shuffle/", **HTMX).content.decode()
    assert {t for t, _ in queue_texts(channel)} == {"banana", "cherry"}
    browser.post(f"/queue/{channel.pk}/pause/")
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.PAUSED
    browser.post(f"/queue/{channel.pk}/resume/")
    channel.refresh_from_db()
    assert channel.status == ChannelStatus.ACTIVE


def test_viewers_see_the_calendar_without_move_or_compose_controls(
    frozen, client, workspace, channel, membership
):
    create_post(
        membership, channels=[channel], parts=[PartInput("Plan")], at=berlin(2026, 6, 2, 11, 15)
    )
    viewer = add_member(workspace, "viv@example.com", Role.VIEWER)
    client.login(email=viewer.user.email, password=PASSWORD)

    page = client.get("/calendar/").content.decode()

    assert "Plan" in page and "Open slot" in page
    assert "draggable" not in page and "data-move=" not in page and "/compose/" not in page


def test_viewers_cannot_reorder_or_edit_schedules(frozen, client, workspace, channel, membership):
    first, *_ = queue_three(membership, channel)
    viewer = add_member(workspace, "viv@example.com", Role.VIEWER)
    client.login(email=viewer.user.email, password=PASSWORD)

    assert client.get(f"/queue/{channel.pk}/").status_code == 200
    assert (
        client.post(f"/queue/{channel.pk}/move/", {"delivery": first.pk, "to": "down"}).status_code
        == 403
    )
    assert (
        client.post(
            f"/schedule/{channel.pk}/", {"action": "add", "day": "mon", "time": "10:00"}
        ).status_code
        == 403
    )


# -- posting schedule ------------------------------------------------------------------------------
def test_schedule_changes_reflow_the_queue_at_once(frozen, browser, membership, channel):
    queue_three(membership, channel)
    url = f"/schedule/{channel.pk}/"

    response = browser.post(url, {"action": "remove", "day": "mon", "time": "09:00"}, **HTMX)

    page = response.content.decode()
    assert "Removed 09:00 from Monday. The queue has re-flowed onto the new slots." in page
    assert [at for _, at in queue_texts(channel)] == [
        berlin(2026, 6, 1, 17, 0),
        berlin(2026, 6, 2, 9, 0),
        berlin(2026, 6, 2, 17, 0),
    ]
    browser.post(url, {"action": "add", "day": "mon", "time": "12:30"}, **HTMX)
    assert queue_texts(channel)[0][1] == berlin(2026, 6, 1, 12, 30)
    browser.post(url, {"action": "copy", "day": "tue", "targets": ["mon", "sun"]}, **HTMX)
    channel.refresh_from_db()
    assert channel.schedule["mon"] == channel.schedule["sun"] == ["09:00", "17:00"]


def test_time_zone_change_keeps_clock_times_in_the_new_zone(frozen, browser, membership, channel):
    queue_three(membership, channel)

    browser.post(
        f"/schedule/{channel.pk}/", {"action": "timezone", "timezone": "America/New_York"}, **HTMX
    )
    bad = browser.post(
        f"/schedule/{channel.pk}/", {"action": "timezone", "timezone": "Mars/Base"}, **HTMX
    )

    channel.refresh_from_db()
    assert channel.timezone == "America/New_York"
    # 09:00 in New York is 15:00 in Berlin.
    assert queue_texts(channel)[0][1] == berlin(2026, 6, 1, 15, 0)
    assert "“Mars/Base” is not an IANA time zone" in bad.content.decode()


def test_bad_time_is_shown_and_nothing_changes(frozen, browser, channel):
    response = browser.post(
        f"/schedule/{channel.pk}/", {"action": "add", "day": "mon", "time": "25:00"}, **HTMX
    )

    assert "“25:00” on mon is not a time like 09:00" in response.content.decode()
    channel.refresh_from_db()
    assert channel.schedule["mon"] == ["09:00", "17:00"]


# -- feed settings ---------------------------------------------------------------------------------
def test_feed_can_be_turned_on_regenerated_and_off(frozen, browser):
    browser.post("/calendar/subscribe/", {"action": "on"})
    page = browser.get("/calendar/subscribe/").content.decode()
    url = CalendarFeed.objects.get().secrets["token"]
    assert url in page

    browser.post("/calendar/subscribe/", {"action": "regenerate"})
    assert CalendarFeed.objects.get().secrets["token"] != url
    assert browser.get(f"/calendar/feed/{url}.ics").status_code == 404
    response = browser.post("/calendar/subscribe/", {"action": "off"}, **HTMX)
    assert "Feed turned off" in response.content.decode()
    assert not CalendarFeed.objects.exists()

"""Private iCalendar feeds: valid iCalendar, one event per post and channel, revocable URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import icalendar
import pytest
import time_machine

from accounts.models import Membership
from scheduler import calendar, feeds
from scheduler.compose import PartInput, cancel_post, create_post
from scheduler.models import CalendarFeed
from tests.conftest import make_mastodon_channel, tick_and_publish

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def post_at(membership, channels, text, at, **kwargs):
    return create_post(membership, channels=channels, parts=[PartInput(text)], at=at, **kwargs)


def fetch(client, url):
    response = client.get(url.removeprefix("http://testserver"))
    return response, (
        icalendar.Calendar.from_ical(response.content) if response.status_code == 200 else None
    )


def events(cal):
    return {str(e["summary"]): e for e in cal.walk("VEVENT")}


def test_feed_lists_scheduled_and_published_posts_per_channel(
    frozen, client, membership, mastodon_channel, fake_mastodon
):
    second = make_mastodon_channel(membership.workspace, fake_mastodon, remote_id="2")
    second.name = "Brand"
    second.save()
    post_at(
        membership,
        [mastodon_channel, second],
        "Launch day!\nMore text",
        NOW + timedelta(days=1),
        tags=["launch"],
    )
    post_at(membership, [mastodon_channel], "already out", NOW + timedelta(seconds=30))
    post_at(membership, [mastodon_channel], "just a draft", NOW + timedelta(days=2), draft=True)
    cancel_post(post_at(membership, [mastodon_channel], "called off", NOW + timedelta(days=3)))
    frozen.move_to(NOW + timedelta(minutes=1))
    assert tick_and_publish() == ["published"]

    response, cal = fetch(client, feeds.issue_feed(membership))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert str(cal["version"]) == "2.0" and "Acme" in str(cal["x-wr-calname"])
    found = events(cal)
    assert sorted(found) == [
        "Published · Alice: already out",
        "Scheduled · Alice: Launch day!",
        "Scheduled · Brand: Launch day!",
    ]
    launch = found["Scheduled · Brand: Launch day!"]
    assert launch.decoded("dtstart") == NOW + timedelta(days=1)
    assert launch.decoded("dtend") == NOW + timedelta(days=1, minutes=15)
    assert "Launch day!\nMore text" in str(launch["description"])
    assert str(launch["url"]).startswith("http://testserver/posts/")
    assert launch["categories"].cats == ["launch"]
    published = found["Published · Alice: already out"]
    assert fake_mastodon.statuses[0]["url"] in str(published["description"])
    assert len({str(e["uid"]) for e in found.values()}) == 3


def test_a_moved_post_keeps_its_uid_with_a_newer_sequence(
    frozen, client, membership, mastodon_channel
):
    delivery = post_at(
        membership, [mastodon_channel], "moving", NOW + timedelta(days=1)
    ).deliveries.get()
    url = feeds.issue_feed(membership)
    _, before = fetch(client, url)
    (old,) = before.walk("VEVENT")

    frozen.move_to(NOW + timedelta(hours=1))
    calendar.reschedule_delivery(membership, delivery.pk, at=NOW + timedelta(days=2))
    _, after = fetch(client, url)
    (new,) = after.walk("VEVENT")

    assert str(new["uid"]) == str(old["uid"])
    assert new.decoded("dtstart") == NOW + timedelta(days=2)
    assert new.decoded("last-modified") == NOW + timedelta(hours=1)
    assert new.decoded("dtstamp") == NOW + timedelta(hours=1)
    assert int(new["sequence"]) > int(old["sequence"])


def test_nothing_from_other_workspaces(
    frozen, client, membership, mastodon_channel, bob, other_workspace, fake_mastodon
):
    theirs = make_mastodon_channel(other_workspace, fake_mastodon, remote_id="99")
    post_at(Membership.objects.get(user=bob), [theirs], "Globex plan", NOW + timedelta(days=1))
    post_at(membership, [mastodon_channel], "Acme plan", NOW + timedelta(days=1))

    _, cal = fetch(client, feeds.issue_feed(membership))

    assert list(events(cal)) == ["Scheduled · Alice: Acme plan"]


def test_regenerate_and_turn_off_revoke_the_old_url(frozen, client, membership):
    first = feeds.issue_feed(membership)
    second = feeds.issue_feed(membership)

    assert first != second
    assert client.head(urlsplit(second).path).status_code == 200
    assert fetch(client, first)[0].status_code == 404
    assert fetch(client, second)[0].status_code == 200
    assert feeds.turn_off_feed(membership) is True
    assert fetch(client, second)[0].status_code == 404
    assert not CalendarFeed.objects.exists()


def test_only_a_hash_is_looked_up_and_leaving_the_team_closes_the_feed(frozen, client, membership):
    url = feeds.issue_feed(membership)
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    feed = CalendarFeed.objects.get()
    assert token not in feed.token_hash and len(feed.token_hash) == 64
    assert feeds.feed_url(feed) == url  # the owner can copy it again

    membership.delete()

    assert fetch(client, url)[0].status_code == 404


def test_a_renamed_channel_shows_at_once_despite_the_cache(
    frozen, client, membership, mastodon_channel
):
    post_at(membership, [mastodon_channel], "Cached?", NOW + timedelta(days=1))
    url = feeds.issue_feed(membership)
    assert list(events(fetch(client, url)[1])) == ["Scheduled · Alice: Cached?"]

    mastodon_channel.name = "Acme news"
    mastodon_channel.save()

    assert list(events(fetch(client, url)[1])) == ["Scheduled · Acme news: Cached?"]


def test_staff_see_feeds_in_the_admin_without_their_secret(client, alice, membership):
    feeds.issue_feed(membership)
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    feed = CalendarFeed.objects.get()

    listing = client.get("/admin/scheduler/calendarfeed/")
    detail = client.get(f"/admin/scheduler/calendarfeed/{feed.pk}/change/")

    assert listing.status_code == detail.status_code == 200
    assert feed.secrets["token"] not in detail.content.decode()
    assert feed.token_hash not in detail.content.decode()

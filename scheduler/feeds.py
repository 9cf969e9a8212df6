"""Private iCalendar feeds: a member subscribes their calendar app to the workspace's posts.

The feed is RFC 5545 iCalendar (https://www.rfc-editor.org/rfc/rfc5545) reached by a secret URL,
as Google Calendar, Apple Calendar and Thunderbird expect of a subscription. One event per
delivery (a post on one channel) with a UID that never changes, so a moved post moves in the
subscriber's calendar instead of appearing twice. The object has no METHOD, so DTSTAMP is the
time the event last changed (RFC 5545, 3.8.7.2) and the feed only changes when posts do.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import icalendar
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership

from .calendar import (
    STATUS_LABELS,
    CalendarFilters,
    deliveries_in,
    display_status,
    workspace_channels,
)
from .models import CalendarFeed, Delivery, DeliveryStatus

TOKEN_PREFIX = "hcal_"
FEED_STATUSES = frozenset(
    {DeliveryStatus.SCHEDULED, DeliveryStatus.PUBLISHING, DeliveryStatus.PUBLISHED}
)
# How much history a feed carries: calendar apps re-read the whole feed every refresh.
HISTORY = timedelta(days=180)
AHEAD = timedelta(days=5 * 366)
EVENT_LENGTH = timedelta(minutes=15)
DESCRIPTION_CHARS = 2000
CACHE_SECONDS = 24 * 3600


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_feed(membership: Membership) -> str:
    """Turn the member's feed on, or give it a new secret (the old URL stops working).

    Returns the new feed URL.
    """
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        feed, _ = CalendarFeed.objects.select_for_update().get_or_create(
            user=membership.user,
            workspace=membership.workspace,
            defaults={"token_hash": _hash(token), "secrets": {"token": token}},
        )
        feed.token_hash, feed.secrets = _hash(token), {"token": token}
        feed.save(update_fields=["token_hash", "secrets"])
    return feed_url(feed)


def turn_off_feed(membership: Membership) -> bool:
    """Delete the member's feed: its URL answers 404 from now on. Returns whether one existed."""
    deleted, _ = CalendarFeed.objects.filter(
        user=membership.user, workspace=membership.workspace
    ).delete()
    return bool(deleted)


def member_feed(membership: Membership) -> CalendarFeed | None:
    return CalendarFeed.objects.filter(user=membership.user, workspace=membership.workspace).first()


def feed_url(feed: CalendarFeed) -> str:
    """The absolute secret URL of a feed."""
    path = reverse("scheduler:calendar_feed", args=[feed.secrets["token"]])
    return settings.PUBLIC_URL + path


def find_feed(token: str) -> CalendarFeed | None:
    """The feed a URL token opens, or None (unknown, turned off, or its user left the team)."""
    feed = (
        CalendarFeed.objects.select_related("workspace", "user")
        .filter(token_hash=_hash(token), user__is_active=True)
        .first()
    )
    if (
        feed is None
        or not Membership.objects.filter(user=feed.user_id, workspace=feed.workspace_id).exists()
    ):
        return None
    CalendarFeed.objects.filter(pk=feed.pk).update(last_fetched_at=timezone.now())
    return feed


def render_feed(feed: CalendarFeed) -> bytes:
    """The feed as iCalendar bytes: the workspace's scheduled and published posts.

    Calendar apps poll the same feed again and again, and building iCalendar is what costs:
    the bytes are cached under a digest of everything they are built from, so any change to a
    post, a channel or the workspace makes a new entry and nothing stale is ever served.
    """
    now = timezone.now()
    rows = deliveries_in(
        feed.workspace,
        start=now - HISTORY,
        end=now + AHEAD,
        filters=CalendarFilters(statuses=FEED_STATUSES),
        channels=workspace_channels(feed.workspace),
        preview_chars=DESCRIPTION_CHARS,
        fields=("created_at", "updated_at", "post__updated_at", "post__tags"),
    )
    key = "herald:ical:" + _digest(feed, rows)
    body = cache.get(key)
    if body is None:
        body = _calendar(feed, rows)
        cache.set(key, body, timeout=CACHE_SECONDS)
    return body


def _digest(feed: CalendarFeed, rows: list[Delivery]) -> str:
    inputs = [settings.PUBLIC_URL, feed.workspace.name]
    for d in rows:
        channel = d.channel
        inputs.append(
            (d.pk, d.post_id, d.status, d.post.status, d.shown_at, d.updated_at,  # type: ignore[attr-defined]
             d.post.updated_at, d.created_at, d.post.tags, d.preview, d.remote_urls,  # type: ignore[attr-defined]
             channel.label, channel.handle)
        )  # fmt: skip
    return hashlib.sha256(repr(inputs).encode()).hexdigest()


def _calendar(feed: CalendarFeed, rows: list[Delivery]) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Herald//Content calendar//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"Herald: {feed.workspace.name}")
    calendar.add("x-wr-caldesc", "Scheduled and published posts")
    # Hints for how often subscribers re-read (Apple and Outlook honour these).
    calendar.add("refresh-interval", timedelta(minutes=15), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT15M")
    for delivery in rows:
        calendar.add_component(_event(delivery))
    body: bytes = calendar.to_ical()
    return body


def _event(delivery: Delivery) -> icalendar.Event:
    start: datetime = delivery.shown_at  # type: ignore[attr-defined]
    text: str = delivery.preview or ""  # type: ignore[attr-defined]
    changed = max(delivery.updated_at, delivery.post.updated_at)
    status = STATUS_LABELS[display_status(delivery)]
    first_line = (text.strip().splitlines() or ["(media only)"])[0]
    event = icalendar.Event()
    event.add("uid", f"delivery-{delivery.pk}@{urlsplit(settings.PUBLIC_URL).hostname}")
    event.add("dtstamp", changed)
    event.add("last-modified", changed)
    # Grows with every change and never goes back: seconds from creation to the last change.
    event.add("sequence", max(0, int((changed - delivery.created_at).total_seconds())))
    event.add("dtstart", start)
    event.add("dtend", start + EVENT_LENGTH)
    event.add("summary", f"{status} · {delivery.channel.label}: {first_line[:80]}")
    details = [text, "", f"{status} on {delivery.channel.label} ({delivery.channel.handle})"]
    details += delivery.remote_urls
    event.add("description", "\n".join(details))
    event.add(
        "url", settings.PUBLIC_URL + reverse("scheduler:post_detail", args=[delivery.post_id])
    )
    event.add("transp", "TRANSPARENT")
    if delivery.post.tags:
        event.add("categories", list(delivery.post.tags))
    return event

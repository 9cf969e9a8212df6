"""Retry times are shown in the reader's time zone, with the date when it is not today."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from scheduler.models import DeliveryStatus
from scheduler.timefmt import moment_text
from tests.conftest import schedule

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # 19:00 in Berlin


def test_a_time_today_shows_the_clock_and_the_zone():
    assert moment_text(NOW + timedelta(minutes=53), zone=BERLIN, now=NOW) == "19:53 CET"


def test_a_time_tomorrow_in_the_readers_zone_shows_the_date():
    # 23:30 UTC is still today in UTC but already tomorrow in Berlin.
    at = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert moment_text(at, zone=BERLIN, now=NOW) == "Wed 2 Dec, 00:30 CET"
    assert moment_text(at, zone=UTC, now=NOW) == "23:30 UTC"


def test_another_year_shows_the_year():
    at = datetime(2027, 1, 2, 9, 0, tzinfo=UTC)
    assert moment_text(at, zone=UTC, now=NOW) == "Sat 2 Jan 2027, 09:00 UTC"


@pytest.mark.django_db
def test_post_page_names_the_retry_date_in_the_readers_zone(
    client, alice, membership, mastodon_channel
):
    alice.timezone = "Europe/Berlin"
    alice.save()
    post = schedule(membership, [mastodon_channel], "Rate limited until tomorrow")
    retry_at = timezone.now() + timedelta(days=1)
    post.deliveries.update(
        status=DeliveryStatus.SCHEDULED,
        next_attempt_at=retry_at,
        last_error="Mastodon's rate limit was reached.",
        last_error_code="rate_limited",
    )
    client.force_login(alice)

    page = client.get(f"/posts/{post.pk}/").content.decode()

    local = retry_at.astimezone(BERLIN)
    assert f"{local:%a} {local.day} {local:%b}, {local:%H:%M} {local.tzname()}" in page
    with timezone.override(BERLIN):
        message = post.deliveries.get().error_message()
    assert message.endswith(f"Herald will try again at {moment_text(retry_at, zone=BERLIN)}.")
    assert f"{local.day} {local:%b}" in message

"""Mastodon through Mastodon.py against the fake server: what was sent, and every error path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.compose import ComposeError, PartInput, create_post
from scheduler.models import Channel, DeliveryStatus
from scheduler.networks import network_for
from scheduler.networks.base import InvalidServerURL, PartContent, check_server_url
from tests.conftest import schedule, tick_and_publish, upload_media

pytestmark = pytest.mark.django_db

STATUSES = r"^/api/v1/statuses$"


def test_status_carries_options_and_idempotency_key(membership, mastodon_channel, fake_mastodon):
    post = schedule(
        membership,
        [mastodon_channel],
        "Spoilers ahead",
        options={
            "content_warning": "film plot",
            "visibility": "unlisted",
            "language": "de",
            "sensitive": True,
        },
    )

    assert tick_and_publish() == ["published"]

    (request,) = fake_mastodon.requests_to("POST", STATUSES)
    fields = fake_mastodon.statuses[0]["request_fields"]
    assert fields["status"] == "Spoilers ahead"
    assert fields["spoiler_text"] == "film plot"
    assert fields["visibility"] == "unlisted"
    assert fields["language"] == "de"
    key = post.deliveries.get().part_states[0]["handle"]["idempotency_key"]
    assert request.header("Idempotency-Key") == key
    assert fake_mastodon.statuses[0]["visibility"] == "unlisted"


def test_image_with_alt_text_is_uploaded_then_attached(membership, mastodon_channel, fake_mastodon):
    media = upload_media(membership, alt_text="A red square")
    create_post(
        membership,
        channels=[mastodon_channel],
        parts=[PartInput("Look", [media])],
        at=timezone.now() - timedelta(seconds=1),
    )

    assert tick_and_publish() == ["published"]

    (uploaded,) = fake_mastodon.media.values()
    assert uploaded["description"] == "A red square"
    assert uploaded["mime_type"] == "image/png"
    assert uploaded["endpoint"] == "/api/v2/media"
    assert fake_mastodon.statuses[0]["media_ids"] == [uploaded["id"]]


def test_video_waits_for_async_processing_before_posting(
    membership, mastodon_channel, fake_mastodon
):
    fake_mastodon.media_processing_polls = 2
    media = upload_media(membership, video=True, alt_text="clip")
    create_post(
        membership,
        channels=[mastodon_channel],
        parts=[PartInput("Watch", [media])],
        at=timezone.now() - timedelta(seconds=1),
    )

    assert tick_and_publish() == ["published"]

    media_id = next(iter(fake_mastodon.media))
    polls = fake_mastodon.requests_to("GET", rf"^/api/v1/media/{media_id}$")
    assert len(polls) == 2  # 206 once, then 200
    first_status = fake_mastodon.requests_to("POST", STATUSES)[0]
    assert fake_mastodon.requests.index(first_status) > fake_mastodon.requests.index(polls[-1])
    assert fake_mastodon.statuses[0]["media_ids"] == [media_id]


def test_retry_after_media_upload_reuses_the_uploaded_media(
    membership, mastodon_channel, fake_mastodon, settings
):
    settings.HERALD_BACKOFF_BASE = 0.01
    media = upload_media(membership)
    create_post(
        membership,
        channels=[mastodon_channel],
        parts=[PartInput("pic", [media])],
        at=timezone.now(),
    )
    fake_mastodon.inject("POST", STATUSES, status=502)

    assert tick_and_publish() == ["retry"]
    assert tick_and_publish(timezone.now() + timedelta(seconds=5)) == ["published"]

    assert len(fake_mastodon.media) == 1
    assert len(fake_mastodon.statuses) == 1


def test_limits_are_read_from_the_instance_and_cached(mastodon_channel, fake_mastodon):
    fake_mastodon.max_characters = 1000
    network = network_for(mastodon_channel)

    limits = network.limits()
    assert limits.max_characters == 1000
    assert limits.characters_reserved_per_url == 23
    assert limits.max_media == 4
    network_for(Channel.objects.get(pk=mastodon_channel.pk)).limits()

    assert len(fake_mastodon.requests_to("GET", r"^/api/v2/instance/?$")) == 1


def test_length_is_counted_like_mastodon(mastodon_channel):
    network = network_for(mastodon_channel)
    url = "https://example.com/" + "a" * 200
    assert network.count_characters(f"see {url}") == 4 + 23
    assert network.count_characters("hi @bob@very.long.example.social") == len("hi @bob")
    assert network.count_characters("👩‍👩‍👧 é") == 3


def test_too_long_post_is_rejected_before_any_network_call(
    membership, mastodon_channel, fake_mastodon
):
    fake_mastodon.max_characters = 20
    network_for(mastodon_channel).limits(refresh=True)
    requests_before = len(fake_mastodon.requests)

    with pytest.raises(ComposeError) as caught:
        schedule(membership, [mastodon_channel], "x" * 21)

    (messages,) = caught.value.errors.values()
    assert "21 characters" in messages[0] and "allows 20" in messages[0]
    assert len(fake_mastodon.requests) == requests_before


def test_content_warning_counts_toward_the_limit(mastodon_channel, fake_mastodon):
    fake_mastodon.max_characters = 20
    network = network_for(mastodon_channel)
    errors = network.validate([PartContent("x" * 15)], {"content_warning": "123456"})
    assert errors == ["Part 1 with its content warning is 21 characters; Mastodon allows 20 here."]


def test_slow_reply_times_out_and_is_retried_with_the_same_key(
    membership, mastodon_channel, fake_mastodon, settings
):
    settings.HERALD_NETWORK_TIMEOUT = 0.5
    settings.HERALD_BACKOFF_BASE = 0.01
    post = schedule(membership, [mastodon_channel], "Slow server")
    fake_mastodon.inject("POST", STATUSES, delay=1.5)

    assert tick_and_publish() == ["retry"]
    assert post.deliveries.get().last_error_code == "network_error"
    assert tick_and_publish(timezone.now() + timedelta(seconds=5)) == ["published"]

    keys = {r.header("Idempotency-Key") for r in fake_mastodon.requests_to("POST", STATUSES)}
    assert len(keys) == 1
    assert len(fake_mastodon.statuses) == 1  # the slow first request created it; the retry found it


def test_forbidden_scope_marks_the_channel(membership, mastodon_channel, fake_mastodon):
    fake_mastodon.inject("POST", STATUSES, status=403)
    schedule(membership, [mastodon_channel], "no scope")

    assert tick_and_publish() == ["needs_reconnect"]
    mastodon_channel.refresh_from_db()
    assert mastodon_channel.status == "needs_reconnect"
    assert "outside the authorized scopes" in mastodon_channel.status_detail


def test_deleted_parent_fails_the_thread_with_a_clear_message(
    membership, mastodon_channel, fake_mastodon
):
    post = schedule(membership, [mastodon_channel], "one", "two")
    fake_mastodon.inject("POST", STATUSES)  # part one goes through untouched
    fake_mastodon.inject("POST", STATUSES, status=404, body={"error": "Record not found"})

    assert tick_and_publish() == ["failed"]
    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "Record not found" in delivery.last_error


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5",
        "https://192.168.1.1",
        "https://[::1]:8443",
        "https://169.254.169.254",
        "ftp://x.org",
    ],
)
def test_private_or_odd_server_urls_are_refused(url, settings):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = []
    with pytest.raises(InvalidServerURL):
        check_server_url(url)


def test_allowed_private_host_is_accepted(settings, fake_mastodon):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    assert check_server_url(fake_mastodon.url + "/") == fake_mastodon.url


def test_verify_credentials_returns_the_profile(mastodon_channel, fake_mastodon):
    profile = network_for(mastodon_channel).verify_credentials()
    assert profile.remote_id == "1"
    assert profile.handle == f"@alice@{fake_mastodon.url.split('://')[1]}"
    assert profile.display_name


def test_reconcile_after_the_key_window_matches_links_tags_and_mentions(
    membership, mastodon_channel, fake_mastodon
):
    from scheduler.models import Delivery

    text = "Read https://example.com/a/very/long/path/indeed?x=1 #herald cc @bob@other.example"
    post = schedule(membership, [mastodon_channel], text)
    fake_mastodon.inject("POST", STATUSES, reset_after_handling=True)
    assert tick_and_publish() == ["retry"]
    fake_mastodon.advance_clock(7200)
    delivery = post.deliveries.get()
    delivery.part_states[0]["handle"]["created_at"] = (
        timezone.now() - timedelta(hours=2)
    ).isoformat()
    Delivery.objects.filter(pk=delivery.pk).update(part_states=delivery.part_states)

    assert tick_and_publish(timezone.now() + timedelta(hours=1)) == ["published"]

    assert len(fake_mastodon.statuses) == 1
    delivery.refresh_from_db()
    assert delivery.part_states[0]["remote_id"] == fake_mastodon.statuses[0]["id"]


def test_media_uploaded_long_ago_is_uploaded_again(
    membership, mastodon_channel, fake_mastodon, settings
):
    from scheduler.models import Delivery

    settings.HERALD_BACKOFF_BASE = 0.01
    media = upload_media(membership)
    post = create_post(
        membership,
        channels=[mastodon_channel],
        parts=[PartInput("pic", [media])],
        at=timezone.now(),
    )
    fake_mastodon.inject("POST", STATUSES, status=503)
    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    delivery.part_states[0]["handle"]["uploaded_at"] = (
        timezone.now() - timedelta(days=1)
    ).isoformat()
    Delivery.objects.filter(pk=delivery.pk).update(part_states=delivery.part_states)

    assert tick_and_publish(timezone.now() + timedelta(seconds=5)) == ["published"]

    assert len(fake_mastodon.media) == 2
    newest = max(fake_mastodon.media, key=int)
    assert fake_mastodon.statuses[0]["media_ids"] == [newest]


def test_a_server_that_is_down_is_not_asked_for_limits_again_at_once(
    mastodon_channel, fake_mastodon
):
    fake_mastodon.inject("GET", r"^/api/v2/instance/?$", status=503)

    assert network_for(mastodon_channel).limits().max_characters == 500  # the defaults
    assert network_for(Channel.objects.get(pk=mastodon_channel.pk)).limits().max_characters == 500

    assert len(fake_mastodon.requests_to("GET", r"^/api/v2/instance/?$")) == 1

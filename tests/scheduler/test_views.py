"""The minimal web UI: compose, see status and errors, cancel, retry."""

from __future__ import annotations

import pytest

from accounts.models import Role
from scheduler.models import Delivery, DeliveryStatus, Post, PostStatus
from tests.conftest import PASSWORD, add_member, tick_and_publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, alice):
    client.login(email=alice.email, password=PASSWORD)
    return client


def test_anonymous_user_is_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_compose_schedules_in_the_users_timezone(browser, alice, mastodon_channel):
    alice.timezone = "Europe/Berlin"
    alice.save()

    response = browser.post(
        "/compose/",
        {
            "channels": [mastodon_channel.pk],
            "part-0-text": "Winter post",
            "when": "at",
            "scheduled_at": "2030-01-15T09:30",
        },
    )

    assert response.status_code == 302
    delivery = Delivery.objects.get()
    assert delivery.due_at.isoformat() == "2030-01-15T08:30:00+00:00"  # 09:30 CET
    assert delivery.status == DeliveryStatus.SCHEDULED


def test_compose_thread_and_share_now_publishes(browser, mastodon_channel, fake_mastodon):
    browser.post(
        "/compose/",
        {"channels": [mastodon_channel.pk], "part-0-text": "one\n---\ntwo", "when": "now"},
    )

    assert tick_and_publish() == ["published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["one", "two"]
    page = browser.get(f"/posts/{Post.objects.get().pk}/").content.decode()
    assert fake_mastodon.statuses[0]["url"] in page


def test_compose_errors_are_shown_per_channel(browser, mastodon_channel, fake_mastodon):
    response = browser.post(
        "/compose/", {"channels": [mastodon_channel.pk], "part-0-text": "x" * 501, "when": "now"}
    )

    assert response.status_code == 400
    assert "501 characters; Mastodon allows 500" in response.content.decode()
    assert not Post.objects.exists()


def test_failed_delivery_shows_error_and_can_be_retried(browser, mastodon_channel, fake_mastodon):
    browser.post(
        "/compose/", {"channels": [mastodon_channel.pk], "part-0-text": "rejected", "when": "now"}
    )
    fake_mastodon.inject(
        "POST", r"^/api/v1/statuses$", status=422, body={"error": "Validation failed: spam"}
    )
    assert tick_and_publish() == ["failed"]
    delivery = Delivery.objects.get()

    page = browser.get("/").content.decode()
    assert "Mastodon rejected the post: Validation failed: spam" in page
    browser.post(f"/deliveries/{delivery.pk}/retry/")

    assert tick_and_publish() == ["published"]


def test_contributor_post_awaits_approval(client, workspace, mastodon_channel, fake_mastodon):
    contributor = add_member(workspace, "carol@example.com", Role.CONTRIBUTOR)
    client.login(email=contributor.user.email, password=PASSWORD)

    client.post(
        "/compose/",
        {"channels": [mastodon_channel.pk], "part-0-text": "please approve", "when": "now"},
    )

    assert Post.objects.get().status == PostStatus.PENDING_APPROVAL
    assert Delivery.objects.get().status == DeliveryStatus.HELD
    assert tick_and_publish() == []


def test_viewer_cannot_compose(client, workspace, mastodon_channel):
    viewer = add_member(workspace, "vic@example.com", Role.VIEWER)
    client.login(email=viewer.user.email, password=PASSWORD)
    response = client.post(
        "/compose/", {"channels": [mastodon_channel.pk], "part-0-text": "no", "when": "now"}
    )
    assert response.status_code == 403
    assert not Post.objects.exists()


def test_cancel_from_the_post_page(browser, mastodon_channel, fake_mastodon):
    browser.post(
        "/compose/",
        {
            "channels": [mastodon_channel.pk],
            "part-0-text": "x",
            "when": "at",
            "scheduled_at": "2031-01-01T10:00",
        },
    )
    post = Post.objects.get()
    browser.post(f"/posts/{post.pk}/cancel/")
    assert Delivery.objects.get().status == DeliveryStatus.CANCELLED
    post.refresh_from_db()
    assert post.status == PostStatus.CANCELLED


@pytest.mark.parametrize("network", ["mastodon", "bluesky", "threads"])
def test_channels_page_links_a_disconnected_channel_to_its_own_connect_page(
    browser, workspace, network
):
    from scheduler.models import Channel

    Channel.objects.create(
        workspace=workspace,
        network=network,
        server_url="https://example.social",
        remote_id="42",
        handle="someone",
        status="needs_reconnect",
        status_detail="The token was revoked.",
    )

    page = browser.get("/channels/").content.decode()

    assert "The token was revoked." in page
    assert f'href="/channels/{network}/connect/">Reconnect' in page


def test_calendar_links_prefill_the_composer(browser, mastodon_channel):
    page = browser.get(
        f"/compose/?channel={mastodon_channel.pk}&at=2030-03-02T09:30"
    ).content.decode()

    assert f'value="{mastodon_channel.pk}" data-channel' in page
    assert 'data-handle="' + mastodon_channel.handle + '" checked' in page
    assert 'name="scheduled_at" value="2030-03-02T09:30"' in page
    assert 'value="at" checked' in page

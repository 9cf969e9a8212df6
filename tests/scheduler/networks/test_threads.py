"""Threads through `requests` against the fake Graph API: what was sent, and every error path."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from scheduler.compose import ComposeError, PartInput, create_post
from scheduler.models import Channel, ChannelStatus, Delivery, DeliveryStatus
from scheduler.networks import threads
from scheduler.networks.base import ErrorCategory, NetworkError
from tests.conftest import add_member, schedule, tick_and_publish
from tests.fakes.threads import FakeThreads
from tests.fixtures.threads import make_image, make_threads_channel, make_video

pytestmark = pytest.mark.django_db

CREATE = r"/threads$"
PUBLISH = r"/threads_publish$"
REFRESH = r"^/refresh_access_token$"


def later(seconds: float = 600):
    return timezone.now() + timedelta(seconds=seconds)


def post_with(membership, channel, *parts, options=None):
    """Schedule a post whose parts are (text, [media]) pairs, due now."""
    return create_post(
        membership,
        channels=[channel],
        parts=[PartInput(text, list(media)) for text, media in parts],
        at=timezone.now() - timedelta(seconds=1),
        options=options,
    )


def publishes(fake: FakeThreads) -> list[dict]:
    return [r.form for r in fake.requests_to("POST", PUBLISH)]


# -- publishing ---------------------------------------------------------------------------------------
def test_text_post_is_published_with_its_options_and_permalink(
    membership, threads_channel, fake_threads
):
    post = schedule(
        membership,
        [threads_channel],
        "Hello Threads, read https://example.com/launch",
        options={
            "reply_control": "accounts_you_follow",
            "topic_tag": "#Herald",
            "link_attachment": "https://example.com/launch",
        },
    )

    assert tick_and_publish() == ["published"]

    (published,) = fake_threads.posts
    assert published["text"] == "Hello Threads, read https://example.com/launch"
    assert published["media_type"] == "TEXT"
    assert published["reply_control"] == "accounts_you_follow"
    assert published["topic_tag"] == "Herald"
    assert published["link_attachment"] == "https://example.com/launch"
    delivery = post.deliveries.get()
    state = delivery.part_states[0]
    assert state["remote_id"] == published["id"]
    assert state["handle"]["container_id"] == published["container_id"]
    assert delivery.remote_urls == [published["permalink"]]
    # The container id was stored before the publish call was made.
    (create_request,) = fake_threads.requests_to("POST", CREATE)
    assert create_request.form["access_token"] == [threads_channel.credentials["access_token"]]
    assert publishes(fake_threads)[0]["creation_id"] == [published["container_id"]]
    assert tick_and_publish() == []
    assert len(fake_threads.posts) == 1


@pytest.mark.django_db(transaction=True)
def test_image_is_fetched_by_threads_from_heralds_signed_public_url(
    membership, threads_channel, fake_threads, public_herald
):
    image = make_image(membership, alt_text="A magenta rectangle")
    post_with(membership, threads_channel, ("Look at this", [image]))

    assert tick_and_publish() == ["published"]

    (published,) = fake_threads.posts
    assert published["media_type"] == "IMAGE"
    assert published["alt_text"] == "A magenta rectangle"
    (fetch,) = fake_threads.fetched_urls
    assert fetch["url"] == published["media_url"]
    assert fetch["url"].startswith(f"{public_herald.url}/public/media/")
    assert fetch["status"] == 200
    assert fetch["bytes"] == image.size
    assert fetch["content_type"] == "image/png"
    # Without the signature the same file is not served.
    token_path = urlsplit(fetch["url"]).path
    tampered = token_path.replace("/public/media/", "/public/media/x", 1)
    assert requests.get(public_herald.url + tampered, timeout=5).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_video_is_published_after_in_progress_then_finished(
    membership, threads_channel, fake_threads, public_herald
):
    video = make_video(membership, alt_text="A short clip")
    post_with(membership, threads_channel, ("Watch", [video]))

    assert tick_and_publish() == ["published"]

    (published,) = fake_threads.posts
    assert published["media_type"] == "VIDEO"
    container = fake_threads.container(published["container_id"])
    assert container["video_url"].startswith(public_herald.url)
    assert container["polls"] == fake_threads.video_processing_polls  # IN_PROGRESS twice
    status_polls = fake_threads.requests_to("GET", f"/{published['container_id']}$")
    assert len(status_polls) == fake_threads.video_processing_polls + 1  # then FINISHED
    assert fake_threads.fetched_urls[0]["status"] == 200


@pytest.mark.django_db(transaction=True)
def test_carousel_publishes_every_item_in_order(
    membership, threads_channel, fake_threads, public_herald
):
    items = [make_image(membership, alt_text=f"picture {n}") for n in range(3)]
    items.append(make_video(membership))
    post_with(membership, threads_channel, ("Four things", items))

    assert tick_and_publish() == ["published"]

    (published,) = fake_threads.posts
    assert published["media_type"] == "CAROUSEL"
    assert published["text"] == "Four things"
    children = [fake_threads.container(cid) for cid in published["children"]]
    assert [c["is_carousel_item"] for c in children] == [True] * 4
    assert [c["media_type"] for c in children] == ["IMAGE", "IMAGE", "IMAGE", "VIDEO"]
    assert [c["alt_text"] for c in children[:3]] == ["picture 0", "picture 1", "picture 2"]
    assert sorted(f["status"] for f in fake_threads.fetched_urls) == [200] * 4
    assert fake_threads.quota_usage() == 1  # a carousel counts once


def test_three_part_thread_is_chained_by_reply_to_id(membership, threads_channel, fake_threads):
    post = schedule(membership, [threads_channel], "1/3 start", "2/3 middle", "3/3 end")

    assert tick_and_publish() == ["published"]

    first, second, third = fake_threads.posts
    assert [p["text"] for p in (first, second, third)] == ["1/3 start", "2/3 middle", "3/3 end"]
    assert first["reply_to_id"] is None
    assert second["reply_to_id"] == first["id"]
    assert third["reply_to_id"] == second["id"]
    assert len(post.deliveries.get().remote_urls) == 3


def test_unknown_outcome_after_publish_is_reconciled_without_duplicate(
    membership, threads_channel, fake_threads
):
    post = schedule(membership, [threads_channel], "Exactly once on Threads")
    fake_threads.inject("POST", PUBLISH, reset_after_handling=True)

    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    assert delivery.part_states[0]["in_flight"] is True
    assert len(fake_threads.posts) == 1  # it did reach Threads

    assert tick_and_publish(later()) == ["published"]

    assert len(fake_threads.posts) == 1
    assert len(fake_threads.requests_to("POST", PUBLISH)) == 1
    assert len(fake_threads.requests_to("POST", CREATE)) == 1
    delivery.refresh_from_db()
    assert delivery.part_states[0]["remote_id"] == fake_threads.posts[0]["id"]
    assert delivery.remote_urls == [fake_threads.posts[0]["permalink"]]


def test_unknown_outcome_of_a_reply_is_found_among_replies(
    membership, threads_channel, fake_threads
):
    post = schedule(membership, [threads_channel], "first", "second")
    fake_threads.inject("POST", PUBLISH, reset_after_handling=True)
    fake_threads.inject("POST", PUBLISH, reset_after_handling=True)  # the reply's publish

    assert tick_and_publish() == ["retry"]  # the root: outcome unknown
    assert tick_and_publish(later()) == ["retry"]  # root reconciled; the reply: unknown
    assert tick_and_publish(later(1800)) == ["published"]

    first, second = fake_threads.posts
    assert second["reply_to_id"] == first["id"]
    delivery = post.deliveries.get()
    assert [s["remote_id"] for s in delivery.part_states] == [first["id"], second["id"]]


def test_finished_container_left_unpublished_is_published_again(
    membership, threads_channel, fake_threads
):
    post = schedule(membership, [threads_channel], "Second try")
    fake_threads.inject("POST", PUBLISH, reset_before_handling=True)  # never reached Threads

    assert tick_and_publish() == ["retry"]
    assert fake_threads.posts == []
    assert tick_and_publish(later()) == ["published"]

    (published,) = fake_threads.posts
    assert len(fake_threads.requests_to("POST", CREATE)) == 1  # the same container
    assert (
        post.deliveries.get().part_states[0]["handle"]["container_id"]
        == (published["container_id"])
    )


def test_expired_container_is_recreated(membership, threads_channel, fake_threads):
    post = schedule(membership, [threads_channel], "Late but once")
    fake_threads.inject("POST", PUBLISH, reset_before_handling=True)
    assert tick_and_publish() == ["retry"]
    stale = post.deliveries.get().part_states[0]["handle"]["container_id"]

    fake_threads.advance(25 * 3600)  # containers expire 24 hours after creation
    assert fake_threads.container(stale)["status"] == "EXPIRED"
    assert tick_and_publish(later()) == ["published"]

    (published,) = fake_threads.posts
    assert published["container_id"] != stale
    assert len(fake_threads.requests_to("POST", CREATE)) == 2
    assert [r["creation_id"] for r in publishes(fake_threads)][-1] == [published["container_id"]]


def test_media_not_found_right_after_finished_is_retried_in_place(
    membership, threads_channel, fake_threads
):
    schedule(membership, [threads_channel], "Race with Meta")
    fake_threads.fail_next_publish_with_media_not_found(times=2)

    assert tick_and_publish() == ["published"]

    assert len(fake_threads.posts) == 1
    creation_ids = {r["creation_id"][0] for r in publishes(fake_threads)}
    assert len(publishes(fake_threads)) == 3
    assert creation_ids == {fake_threads.posts[0]["container_id"]}


def test_persistent_media_not_found_retries_later_with_a_new_container(
    membership, threads_channel, fake_threads, settings
):
    settings.THREADS_PUBLISH_RETRIES = 1
    post = schedule(membership, [threads_channel], "Stubborn")
    fake_threads.fail_next_publish_with_media_not_found(times=2)

    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    assert delivery.last_error_code == "media_not_found"
    assert "container_id" not in delivery.part_states[0]["handle"]
    assert tick_and_publish(later()) == ["published"]
    assert len(fake_threads.posts) == 1
    assert len(fake_threads.requests_to("POST", CREATE)) == 2


def test_container_error_fails_with_threads_reason(
    membership, threads_channel, fake_threads, settings
):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = ["testserver", "127.0.0.1"]  # + the fake Graph
    fake_threads.fetch_media = False
    fake_threads.fail_next_container("INVALID_ASPEC_RATIO")
    post = post_with(membership, threads_channel, ("Odd shape", [make_image(membership)]))

    assert tick_and_publish() == ["failed"]

    delivery = post.deliveries.get()
    assert delivery.last_error_code == "media_rejected"
    assert "INVALID_ASPEC_RATIO" in delivery.last_error
    assert fake_threads.posts == []


def test_unreachable_media_url_is_retried_once_then_fails_naming_public_url(
    membership, threads_channel, fake_threads, settings
):
    # PUBLIC_URL points at a port nobody listens on: Threads cannot download the file.
    settings.PUBLIC_URL = "http://127.0.0.1:9"
    fake_threads.fetch_timeout = 1
    post = post_with(membership, threads_channel, ("Broken link", [make_image(membership)]))

    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    assert delivery.last_error_code == "media_download_failed"
    assert tick_and_publish(later()) == ["failed"]

    delivery.refresh_from_db()
    assert delivery.last_error_code == "media_rejected"
    assert "FAILED_DOWNLOADING_IMAGE" in delivery.last_error
    assert "http://127.0.0.1:9" in delivery.last_error
    assert len(fake_threads.fetched_urls) == 2
    assert fake_threads.posts == []


def test_validation_error_from_threads_is_shown_with_metas_message(
    membership, threads_channel, fake_threads
):
    post = schedule(membership, [threads_channel], "Rejected by Meta")
    fake_threads.inject_graph_error(
        "POST",
        CREATE,
        100,
        message="Param text is invalid",
        user_msg="This text cannot be posted.",
    )

    assert tick_and_publish() == ["failed"]

    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error_code == "invalid_parameter"
    assert delivery.last_error == "Threads rejected the post: This text cannot be posted."
    assert delivery.part_states[0]["in_flight"] is False


def test_link_limit_from_threads_is_permanent(membership, threads_channel, fake_threads):
    post = schedule(membership, [threads_channel], "Links")
    fake_threads.inject_graph_error(
        "POST", CREATE, 100, message="THREADS_API__LINK_LIMIT_EXCEEDED", user_msg="Too many links."
    )

    assert tick_and_publish() == ["failed"]
    assert post.deliveries.get().last_error_code == "too_many_links"


def test_server_error_on_container_creation_retries(membership, threads_channel, fake_threads):
    post = schedule(membership, [threads_channel], "Flaky Meta")
    fake_threads.inject("POST", CREATE, status=500)

    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    assert delivery.last_error_code == "server_error"
    assert delivery.part_states[0]["in_flight"] is False  # nothing can have been published
    assert tick_and_publish(later()) == ["published"]
    assert len(fake_threads.posts) == 1


def test_timeout_on_publish_is_reconciled(membership, threads_channel, fake_threads, settings):
    settings.HERALD_NETWORK_TIMEOUT = 0.5
    post = schedule(membership, [threads_channel], "Slow Meta")
    fake_threads.inject("POST", PUBLISH, delay=1.5)  # publishes, but answers too late

    assert tick_and_publish() == ["retry"]
    assert post.deliveries.get().last_error_code == "network_error"
    assert tick_and_publish(later()) == ["published"]
    assert len(fake_threads.posts) == 1


def test_throttling_is_rate_limited(membership, threads_channel, fake_threads, settings):
    settings.THREADS_THROTTLE_RETRY = 900
    post = schedule(membership, [threads_channel], "Too eager")
    fake_threads.inject_graph_error("POST", CREATE, 4, message="Application request limit reached")

    before = timezone.now()
    assert tick_and_publish() == ["rate_limited"]

    delivery = post.deliveries.get()
    assert delivery.last_error_code == "throttled"
    assert 890 <= (delivery.next_attempt_at - before).total_seconds() <= 910


def test_quota_exhausted_defers_the_delivery_until_budget_frees(
    membership, threads_channel, fake_threads
):
    fake_threads.quota_total = 2
    schedule(membership, [threads_channel], "one")
    schedule(membership, [threads_channel], "two")
    assert tick_and_publish() == ["published", "published"]
    first_published = min(p["published_at"] for p in fake_threads.posts)
    post = schedule(membership, [threads_channel], "three")

    assert tick_and_publish() == ["rate_limited"]

    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.SCHEDULED
    assert delivery.last_error_code == "publishing_limit"
    assert "2 posts Threads allows in 24 hours" in delivery.last_error
    assert "try again at" in delivery.error_message()
    frees_at = first_published + 24 * 3600
    assert abs(delivery.next_attempt_at.timestamp() - frees_at) < 3
    assert len(fake_threads.requests_to("POST", CREATE)) == 2  # no container for "three"
    assert tick_and_publish() == []


def test_budget_wait_when_replies_cannot_be_listed_keeps_the_channel_connected(
    membership, threads_channel, fake_threads
):
    fake_threads.quota_total = 1
    schedule(membership, [threads_channel], "one")
    assert tick_and_publish() == ["published"]
    # An older connection without threads_read_replies: Meta refuses the replies listing.
    fake_threads.inject_graph_error("GET", r"/replies$", 10, message="Permission denied")
    post = schedule(membership, [threads_channel], "two")

    assert tick_and_publish() == ["rate_limited"]

    threads_channel.refresh_from_db()
    assert threads_channel.status == "active"
    assert post.deliveries.get().last_error_code == "publishing_limit"


def test_published_container_not_yet_listed_waits_without_spending_attempts(
    membership, threads_channel, fake_threads, settings
):
    settings.HERALD_MAX_ATTEMPTS = 2
    post = schedule(membership, [threads_channel], "Listed late")
    fake_threads.inject("POST", PUBLISH, reset_after_handling=True)
    assert tick_and_publish() == ["retry"]
    fake_threads.list_replies_in_threads = False
    for n in range(3):  # Threads' listing lags behind the publish
        fake_threads.inject("GET", r"/threads$", status=200, body={"data": []})
        assert tick_and_publish(later(120 * (n + 1))) == ["rate_limited"]

    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.SCHEDULED
    assert delivery.last_error_code == "published_not_listed"
    assert tick_and_publish(later(1000)) == ["published"]
    assert len(fake_threads.posts) == 1


def test_quota_error_at_publish_is_rate_limited(membership, threads_channel, fake_threads):
    post = schedule(membership, [threads_channel], "Meta counted differently")
    fake_threads.inject_graph_error(
        "POST", PUBLISH, 9, 2207042, message="Application request limit reached"
    )

    assert tick_and_publish() == ["rate_limited"]
    delivery = post.deliveries.get()
    assert delivery.last_error_code == "publishing_limit"
    assert fake_threads.posts == []


# -- auth and tokens -------------------------------------------------------------------------------------
def test_revoked_token_marks_the_channel_and_keeps_the_post(
    membership, threads_channel, fake_threads, caplog, django_capture_on_commit_callbacks
):
    post = schedule(membership, [threads_channel], "Token gone")
    fake_threads.revoke(threads_channel.credentials["access_token"])

    with (
        caplog.at_level(logging.INFO, logger="herald.events"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert tick_and_publish() == ["needs_reconnect"]

    threads_channel.refresh_from_db()
    assert threads_channel.status == ChannelStatus.NEEDS_RECONNECT
    assert "Threads no longer accepts" in threads_channel.status_detail
    assert "has not authorized application" in threads_channel.status_detail
    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.SCHEDULED
    assert delivery.last_error_code == "token_revoked"
    assert "channel.needs_reconnect" in caplog.text
    assert fake_threads.posts == []


def test_due_token_is_refreshed_and_persisted(workspace, fake_threads):
    channel = make_threads_channel(workspace, fake_threads, age=timedelta(days=55))
    old = channel.credentials["access_token"]

    assert threads.refresh_due_tokens()["refreshed"] == 1

    channel.refresh_from_db()
    new = channel.credentials["access_token"]
    assert [(r["old"], r["new"]) for r in fake_threads.refreshes] == [(old, new)]
    assert 59 <= (channel.token_expires_at - timezone.now()).days <= 60
    assert (timezone.now() - channel.token_refreshed_at).total_seconds() < 60
    assert sum(threads.refresh_due_tokens().values()) == 0  # no longer due the next hour


@pytest.mark.django_db(transaction=True)
def test_overlapping_refresh_runs_refresh_a_token_once(workspace, fake_threads):
    channel = make_threads_channel(workspace, fake_threads, age=timedelta(days=55))
    fake_threads.inject("GET", REFRESH, delay=1.0, times=2)  # a slow refresh
    barrier = threading.Barrier(2)
    results: list[dict[str, int]] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(threads.refresh_due_tokens())
        finally:
            connection.close()

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()

    assert len(fake_threads.refreshes) == 1
    assert sum(r["refreshed"] for r in results) == 1
    channel.refresh_from_db()
    assert channel.credentials["access_token"] == fake_threads.refreshes[0]["new"]


def test_token_younger_than_24_hours_is_not_refreshed(workspace, fake_threads):
    channel = make_threads_channel(workspace, fake_threads, age=timedelta(hours=20))
    # Even close to expiry, Threads refuses to refresh a token under a day old.
    Channel.objects.filter(pk=channel.pk).update(
        token_expires_at=timezone.now() + timedelta(days=2)
    )

    assert threads.refresh_due_tokens()["refreshed"] == 0
    assert fake_threads.requests_to("GET", REFRESH) == []


def test_token_far_from_expiry_is_not_refreshed(workspace, fake_threads):
    make_threads_channel(workspace, fake_threads, age=timedelta(days=30))

    assert threads.refresh_due_tokens()["refreshed"] == 0
    assert fake_threads.requests_to("GET", REFRESH) == []


def test_transient_refresh_failure_never_disconnects(workspace, fake_threads):
    channel = make_threads_channel(workspace, fake_threads, age=timedelta(days=55))
    old = channel.credentials["access_token"]
    fake_threads.inject("GET", REFRESH, status=503)

    assert threads.refresh_due_tokens()["postponed"] == 1

    channel.refresh_from_db()
    assert channel.status == ChannelStatus.ACTIVE
    assert channel.credentials["access_token"] == old
    assert threads.refresh_due_tokens()["refreshed"] == 1  # the next run succeeds


def test_expired_token_marks_the_channel_needs_reconnect(
    workspace, fake_threads, caplog, django_capture_on_commit_callbacks
):
    channel = make_threads_channel(workspace, fake_threads, age=timedelta(days=61))

    with (
        caplog.at_level(logging.INFO, logger="herald.events"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert threads.refresh_due_tokens()["needs_reconnect"] == 1

    channel.refresh_from_db()
    assert channel.status == ChannelStatus.NEEDS_RECONNECT
    assert "Session has expired" in channel.status_detail
    assert "channel.needs_reconnect" in caplog.text
    assert sum(threads.refresh_due_tokens().values()) == 0  # no longer due


def test_refresh_beat_task_runs_the_refresh(workspace, fake_threads):
    from scheduler import tasks

    channel = make_threads_channel(workspace, fake_threads, age=timedelta(days=52))
    tasks.refresh_credentials()

    channel.refresh_from_db()
    assert channel.credentials["access_token"] == fake_threads.refreshes[0]["new"]


# -- connecting ---------------------------------------------------------------------------------------------
def test_oauth_round_trip_checks_state_and_stores_a_long_lived_token(
    client, alice, workspace, fake_threads
):
    fake_threads.auto_approve = True
    client.force_login(alice)

    response = client.post(reverse("scheduler:connect_threads"))

    assert response.status_code == 302
    authorize = response["Location"]
    assert authorize.startswith(f"{fake_threads.url}/oauth/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["client_id"] == [fake_threads.client_id]
    assert query["redirect_uri"] == ["http://testserver/channels/threads/callback/"]
    assert query["scope"] == [
        "threads_basic,threads_content_publish,threads_manage_replies,threads_read_replies"
    ]
    # The user approves on Threads, which sends the browser back with a code and the state.
    callback = requests.get(authorize, allow_redirects=False, timeout=5).headers["Location"]
    back = urlsplit(callback)
    assert parse_qs(back.query)["state"] == query["state"]

    response = client.get(f"{back.path}?{back.query}")

    assert response.status_code == 302
    assert response["Location"] == reverse("scheduler:dashboard")
    channel = Channel.objects.get(workspace=workspace, network="threads")
    token = channel.credentials["access_token"]
    assert fake_threads.tokens[token].kind == "long"
    assert fake_threads.exchanges[0]["long"] == token
    assert channel.remote_id == fake_threads.default_user_id
    assert channel.handle == "@alice_threads"
    assert channel.server_url == fake_threads.url
    assert 59 <= (channel.token_expires_at - timezone.now()).days <= 60
    # The code was single-use and the state is spent: replaying the callback does nothing.
    response = client.get(f"{back.path}?{back.query}", follow=True)
    assert "expired or was not started here" in response.content.decode()
    assert len(fake_threads.requests_to("POST", r"^/oauth/access_token$")) == 1


def test_oauth_callback_with_a_forged_state_is_refused(client, alice, workspace, fake_threads):
    client.force_login(alice)
    client.post(reverse("scheduler:connect_threads"))  # a real flow is pending in the session
    code = fake_threads.authorize(
        fake_threads.client_id, "http://testserver/channels/threads/callback/", state="forged"
    )

    response = client.get(
        reverse("scheduler:threads_callback"), {"code": code, "state": "forged"}, follow=True
    )

    assert "expired or was not started here" in response.content.decode()
    assert fake_threads.requests_to("POST", r"^/oauth/access_token$") == []
    assert not Channel.objects.filter(workspace=workspace, network="threads").exists()


def test_oauth_denied_by_the_user_is_explained(client, alice, fake_threads):
    client.force_login(alice)
    response = client.post(reverse("scheduler:connect_threads"))
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]

    response = client.get(
        reverse("scheduler:threads_callback"),
        {"error": "access_denied", "error_description": "Permissions error", "state": state},
        follow=True,
    )

    assert "Threads did not authorize Herald: Permissions error." in response.content.decode()


def test_connect_page_without_app_credentials_offers_the_token_only(client, alice, settings):
    settings.THREADS_APP_ID = ""
    client.force_login(alice)

    response = client.post(reverse("scheduler:connect_threads"))

    assert response.status_code == 400
    assert "THREADS_APP_ID" in response.content.decode()


def test_connect_with_an_old_long_lived_token_refreshes_it_and_learns_its_expiry(
    workspace, fake_threads
):
    old = fake_threads.issue_long_lived_token(
        issued_at=(timezone.now() - timedelta(days=40)).timestamp()
    )

    channel = threads.connect_threads_token(workspace, access_token=old)

    new = channel.credentials["access_token"]
    assert fake_threads.refreshes[0]["old"] == old
    assert fake_threads.refreshes[0]["new"] == new
    assert 59 <= (channel.token_expires_at - timezone.now()).days <= 60
    assert channel.handle == "@alice_threads"
    assert channel.status == ChannelStatus.ACTIVE


def test_connect_with_a_fresh_long_lived_token_keeps_it(workspace, fake_threads):
    token = fake_threads.issue_long_lived_token()

    channel = threads.connect_threads_token(workspace, access_token=token)

    assert channel.credentials["access_token"] == token  # under 24 h old: not refreshable yet
    assert 58 <= (channel.token_expires_at - timezone.now()).days <= 59


def test_connect_with_a_short_lived_token_exchanges_it(workspace, fake_threads):
    short = fake_threads.issue_short_lived_token()

    channel = threads.connect_threads_token(workspace, access_token=short)

    assert fake_threads.tokens[channel.credentials["access_token"]].kind == "long"
    assert fake_threads.exchanges[0]["short"] == short


def test_connect_with_a_bad_token_raises_a_message_for_the_user(workspace, fake_threads):
    with pytest.raises(NetworkError) as caught:
        threads.connect_threads_token(workspace, access_token="THAAnot-a-token")

    assert caught.value.category == ErrorCategory.AUTH
    assert "did not accept this access token" in caught.value.message
    assert "Cannot parse access token" in caught.value.message
    assert not Channel.objects.filter(network="threads").exists()


def test_connect_view_with_a_token_connects(client, alice, workspace, fake_threads):
    client.force_login(alice)
    token = fake_threads.issue_long_lived_token()

    response = client.post(reverse("scheduler:connect_threads"), {"access_token": token})

    assert response.status_code == 302
    assert Channel.objects.get(workspace=workspace, network="threads").handle == "@alice_threads"


# -- validation before any network call -----------------------------------------------------------------
def test_501_characters_are_rejected_before_any_network_call(
    membership, threads_channel, fake_threads
):
    with pytest.raises(ComposeError) as caught:
        schedule(membership, [threads_channel], "x" * 501)

    assert "501 characters; Threads allows 500" in str(caught.value)
    assert fake_threads.requests == []


def test_emoji_count_as_their_utf8_bytes(membership, threads_channel, fake_threads):
    schedule(membership, [threads_channel], "x" * 496 + "😀")  # 496 + 4 bytes = 500

    with pytest.raises(ComposeError) as caught:
        schedule(membership, [threads_channel], "x" * 497 + "😀")

    assert "501 characters" in str(caught.value)
    assert fake_threads.requests == []


def test_six_links_are_rejected_before_any_network_call(membership, threads_channel, fake_threads):
    text = " ".join(f"https://example.com/{n}" for n in range(6))

    with pytest.raises(ComposeError) as caught:
        schedule(membership, [threads_channel], text)

    assert "6 links; Threads allows at most 5" in str(caught.value)
    assert fake_threads.requests == []


def test_link_attachment_counts_toward_the_five_links(membership, threads_channel, fake_threads):
    text = " ".join(f"https://example.com/{n}" for n in range(5))

    with pytest.raises(ComposeError):
        schedule(
            membership,
            [threads_channel],
            text,
            options={"link_attachment": "https://example.org/more"},
        )
    assert fake_threads.requests == []


def test_media_is_refused_at_compose_time_without_a_public_url(
    membership, threads_channel, fake_threads, settings
):
    settings.PUBLIC_URL = "http://127.0.0.1:8000"
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = []

    with pytest.raises(ComposeError) as caught:
        post_with(membership, threads_channel, ("pic", [make_image(membership)]))

    assert "PUBLIC_URL (http://127.0.0.1:8000) is not an address reachable" in str(caught.value)
    assert fake_threads.requests == []


def test_unsupported_media_and_options_are_refused(membership, threads_channel, fake_threads):
    wide = make_image(membership, width=2200, height=200)
    too_many = [make_image(membership) for _ in range(21)]

    with pytest.raises(ComposeError) as caught:
        post_with(
            membership,
            threads_channel,
            ("wide", [wide]),
            ("many", too_many),
            options={"reply_control": "nobody", "topic_tag": "a.b", "link_attachment": "x"},
        )

    message = str(caught.value)
    assert "Threads accepts images up to 10:1" in message
    assert "21 attachments; Threads allows 20" in message
    assert "Who can reply must be one of" in message
    assert "The Threads topic must be 1 to 50 characters" in message
    assert "link attachment must be a web address" in message
    assert "Threads shows a link attachment only on a post without media" in message
    assert fake_threads.requests == []


def test_container_is_not_created_before_publish_time(membership, threads_channel, fake_threads):
    schedule(membership, [threads_channel], "Tomorrow", at=timezone.now() + timedelta(days=1))

    assert tick_and_publish() == []
    assert fake_threads.requests == []
    assert Delivery.objects.get().part_states == []


def test_garbled_answer_to_publish_is_treated_as_unknown_outcome(
    membership, threads_channel, fake_threads
):
    post = schedule(membership, [threads_channel], "Behind a proxy")
    fake_threads.inject("POST", PUBLISH, status=502, body=b"<html>Bad gateway</html>")

    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    assert delivery.last_error_code == "server_error_502"
    assert delivery.part_states[0]["in_flight"] is True  # reconciled before any re-publish
    assert tick_and_publish(later()) == ["published"]
    assert len(fake_threads.posts) == 1


def test_connect_page_is_linked_from_the_channels_page(client, alice, fake_threads):
    client.force_login(alice)

    channels_page = client.get(reverse("scheduler:channels")).content.decode()
    response = client.get(reverse("scheduler:connect_threads"))

    assert f'href="{reverse("scheduler:connect_threads")}"' in channels_page
    assert response.status_code == 200
    assert "Continue with Threads" in response.content.decode()


def test_only_owners_and_admins_connect_threads(client, workspace, fake_threads):
    editor = add_member(workspace, "editor@example.com", Role.EDITOR)
    client.force_login(editor.user)

    assert client.get(reverse("scheduler:connect_threads")).status_code == 403
    token = fake_threads.issue_long_lived_token()
    response = client.post(reverse("scheduler:connect_threads"), {"access_token": token})
    assert response.status_code == 403
    assert not Channel.objects.filter(network="threads").exists()

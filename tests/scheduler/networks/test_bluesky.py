"""Bluesky through the real atproto SDK against the fake PDS: what is posted, and every error path."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from atproto_client.client.session import Session
from atproto_client.models import string_formats
from django.db import connection
from django.utils import timezone

from scheduler import channels as channel_flows
from scheduler.compose import ComposeError, PartInput, create_post
from scheduler.models import Channel, ChannelStatus, DeliveryStatus
from scheduler.networks.base import ErrorCategory, InvalidServerURL, NetworkError
from scheduler.networks.bluesky import BlueskyNetwork, connect_bluesky, tid
from tests.conftest import PASSWORD, schedule, tick_and_publish
from tests.fakes.bluesky import (
    ALICE_APP_PASSWORD,
    ALICE_AVATAR,
    ALICE_DID,
    ALICE_HANDLE,
    FakePDS,
)
from tests.fixtures.bluesky import (
    image_bytes,
    make_bluesky_channel,
    make_media,
    record_rkey,
)

pytestmark = pytest.mark.django_db

LATER = timedelta(minutes=5)  # past any backoff the tests configure


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.HERALD_BACKOFF_BASE = 0.01
    settings.HERALD_BACKOFF_MAX = 0.05


@pytest.fixture
def short_lived_pds(settings):
    """A PDS whose access tokens live 10 minutes: the SDK refreshes before every call."""
    fake = FakePDS(access_ttl=600).start()
    settings.BLUESKY_DEFAULT_PDS = fake.url
    yield fake
    fake.stop()


def post_with_media(membership, channel, text, media, options=None):
    return create_post(
        membership,
        channels=[channel],
        parts=[PartInput(text, media)],
        at=timezone.now() - timedelta(seconds=1),
        options=options,
    )


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def span(text: str, fragment: str) -> dict[str, int]:
    """The UTF-8 byte range of `fragment` in `text`, computed independently of the SDK."""
    start = text.encode().index(fragment.encode())
    return {"byteStart": start, "byteEnd": start + len(fragment.encode())}


def stored_session(channel) -> Session:
    return Session.decode(Channel.objects.get(pk=channel.pk).credentials["session"])


# -- text, facets and languages ------------------------------------------------------------------
def test_facets_mark_link_mention_and_hashtag_at_utf8_byte_offsets(
    membership, bluesky_channel, fake_pds, page_server
):
    bob = fake_pds.add_handle("bob.test")
    link = page_server.url + "/docs"  # a local page (no card: loopback is refused here)
    text = f"Ünïcödé 👩‍👩‍👧 日本語のテキスト #herald @bob.test see {link}"
    post = schedule(membership, [bluesky_channel], text, options={"language": "ja"})

    assert tick_and_publish() == ["published"]

    (record,) = [p.value for p in fake_pds.posts]
    assert record["text"] == text
    facets = {
        next(iter(k for k in f["features"][0] if k != "$type")): (f["index"], f["features"][0])
        for f in record["facets"]
    }
    tag_index, tag = facets["tag"]
    assert {k: tag_index[k] for k in ("byteStart", "byteEnd")} == span(text, "#herald")
    assert tag["tag"] == "herald"
    mention_index, mention = facets["did"]
    assert {k: mention_index[k] for k in ("byteStart", "byteEnd")} == span(text, "@bob.test")
    assert mention["did"] == bob
    link_index, link_feature = facets["uri"]
    assert {k: link_index[k] for k in ("byteStart", "byteEnd")} == span(text, link)
    assert link_feature["uri"] == link
    assert record["langs"] == ["ja"]
    assert post.deliveries.get().status == DeliveryStatus.PUBLISHED


def test_unresolvable_mention_stays_plain_text(membership, bluesky_channel, fake_pds):
    schedule(membership, [bluesky_channel], "Thanks @nobody.test and #friends")

    assert tick_and_publish() == ["published"]

    (record,) = [p.value for p in fake_pds.posts]
    kinds = [f["features"][0]["$type"] for f in record["facets"]]
    assert kinds == ["app.bsky.richtext.facet#tag"]
    assert fake_pds.requests_to("GET", "resolveHandle")[0].query["handle"] == ["nobody.test"]


def test_languages_come_from_the_post_and_are_never_defaulted(
    membership, bluesky_channel, fake_pds
):
    schedule(membership, [bluesky_channel], "Sin idioma")
    schedule(membership, [bluesky_channel], "Bonjour, hello", options={"language": "fr, en"})

    assert tick_and_publish() == ["published", "published"]

    records = sorted((p.value for p in fake_pds.posts), key=lambda r: r["text"])
    assert records[0]["langs"] == ["fr", "en"]
    assert "langs" not in records[1]


def test_301_graphemes_are_rejected_before_any_network_call(membership, bluesky_channel, fake_pds):
    requests_before = len(fake_pds.requests)
    accented = "e\u0301"  # é as e + combining accent: one grapheme, two code points

    with pytest.raises(ComposeError) as raised:
        schedule(membership, [bluesky_channel], accented * 301)

    (messages,) = raised.value.errors.values()
    assert "301 characters; Bluesky allows 300" in messages[0]
    assert "Shorten it by 1" in messages[0]
    assert len(fake_pds.requests) == requests_before
    schedule(membership, [bluesky_channel], accented * 300)  # 600 code points, 300 graphemes


def test_text_over_3000_bytes_is_rejected(membership, bluesky_channel):
    family = "👩‍👩‍👧"  # 18 bytes
    with pytest.raises(ComposeError, match="3600 bytes long; Bluesky allows 3000 bytes"):
        schedule(membership, [bluesky_channel], family * 200)  # only 200 graphemes


def test_invalid_language_tag_and_too_many_languages_are_rejected(membership, bluesky_channel):
    with pytest.raises(ComposeError) as raised:
        schedule(membership, [bluesky_channel], "Hi", options={"language": "en,fr,de,es"})
    assert "at most 3 languages" in str(raised.value)
    with pytest.raises(ComposeError, match="not a language tag"):
        schedule(membership, [bluesky_channel], "Hi", options={"language": "english please"})


# -- media and link cards -------------------------------------------------------------------------
def test_images_are_posted_with_alt_text_and_aspect_ratio(
    membership, workspace, bluesky_channel, fake_pds
):
    wide = make_media(workspace, image_bytes(300, 200), alt_text="A red field")
    tall = make_media(workspace, image_bytes(120, 360, fmt="JPEG"), name="tall.jpg")
    post_with_media(membership, bluesky_channel, "Two pictures", [wide, tall])

    assert tick_and_publish() == ["published"]

    (record,) = [p.value for p in fake_pds.posts]
    embed = record["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    first, second = embed["images"]
    assert first["alt"] == "A red field"
    assert first["aspectRatio"]["width"] == 300 and first["aspectRatio"]["height"] == 200
    assert second["alt"] == ""
    assert second["aspectRatio"]["width"] == 120 and second["aspectRatio"]["height"] == 360
    blob = fake_pds.get_blob(first["image"]["ref"]["$link"])
    assert blob.mime_type == "image/png" and blob.data == wide.file.open("rb").read()
    uploads = fake_pds.requests_to("POST", "uploadBlob")
    assert [r.header("content-type") for r in uploads] == ["image/png", "image/jpeg"]


def test_oversize_image_is_recompressed_keeping_its_aspect_ratio(
    membership, workspace, bluesky_channel, fake_pds
):
    original = image_bytes(2400, 1600, noise=True)
    assert len(original) > 3 * fake_pds.image_max_size
    media = make_media(workspace, original, alt_text="Static")
    post_with_media(membership, bluesky_channel, "Big one", [media])

    assert tick_and_publish() == ["published"]

    (record,) = [p.value for p in fake_pds.posts]
    image = record["embed"]["images"][0]
    blob = fake_pds.get_blob(image["image"]["ref"]["$link"])
    assert blob.size <= 1_000_000 and blob.mime_type == "image/jpeg"
    ratio = image["aspectRatio"]
    assert max(ratio["width"], ratio["height"]) <= 2000
    assert abs(ratio["width"] / ratio["height"] - 1.5) < 0.01
    assert image["alt"] == "Static"


def test_exif_rotated_photo_reports_its_displayed_aspect_ratio(
    membership, workspace, bluesky_channel, fake_pds
):
    rotated = make_media(
        workspace, image_bytes(400, 100, fmt="JPEG", exif_orientation=6), name="r.jpg"
    )
    post_with_media(membership, bluesky_channel, "Sideways", [rotated])

    assert tick_and_publish() == ["published"]

    ratio = fake_pds.posts[0].value["embed"]["images"][0]["aspectRatio"]
    assert (ratio["width"], ratio["height"]) == (100, 400)


def test_video_is_posted_as_a_video_embed(membership, workspace, bluesky_channel, fake_pds):
    mp4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000
    video = make_media(
        workspace, mp4, name="clip.mp4", kind="video", mime_type="video/mp4", alt_text="A clip"
    )
    post_with_media(membership, bluesky_channel, "Watch", [video])

    assert tick_and_publish() == ["published"]

    embed = fake_pds.posts[0].value["embed"]
    assert embed["$type"] == "app.bsky.embed.video"
    assert embed["alt"] == "A clip"
    assert fake_pds.get_blob(embed["video"]["ref"]["$link"]).mime_type == "video/mp4"


def test_images_and_video_together_are_rejected(membership, workspace, bluesky_channel):
    video = make_media(workspace, b"\x00" * 10, kind="video", mime_type="video/mp4")
    image = make_media(workspace, image_bytes(10, 10))
    with pytest.raises(ComposeError, match="up to 4 images or one video"):
        post_with_media(membership, bluesky_channel, "Both", [image, video])


def test_link_card_is_built_from_open_graph_with_a_thumb(
    membership, bluesky_channel, fake_pds, page_server, settings
):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = [
        page_server.url.split("://")[1],
        fake_pds.url.split("://")[1],
    ]
    cover = image_bytes(1200, 630, fmt="JPEG")
    page_server.image("/cover.jpg", cover)
    link = page_server.og_page(
        "/post", title="Launch day", description="We shipped it", image="/cover.jpg"
    )
    schedule(membership, [bluesky_channel], f"Read this: {link}")

    assert tick_and_publish() == ["published"]

    external = fake_pds.posts[0].value["embed"]["external"]
    assert fake_pds.posts[0].value["embed"]["$type"] == "app.bsky.embed.external"
    assert (external["uri"], external["title"], external["description"]) == (
        link,
        "Launch day",
        "We shipped it",
    )
    thumb = fake_pds.get_blob(external["thumb"]["ref"]["$link"])
    assert thumb.data == cover and thumb.mime_type == "image/jpeg"


def test_no_link_card_for_a_private_address(
    membership, bluesky_channel, fake_pds, page_server, settings
):
    # Only the PDS is allowed; the page server, also on 127.0.0.1, is a private address.
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = [fake_pds.url.split("://")[1]]
    link = page_server.og_page("/internal", title="Admin panel")
    schedule(membership, [bluesky_channel], f"Look {link}")

    assert tick_and_publish() == ["published"]

    assert "embed" not in fake_pds.posts[0].value
    assert page_server.requests == []


def test_failed_card_fetch_posts_without_a_card(
    membership, bluesky_channel, fake_pds, page_server, settings
):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = [
        page_server.url.split("://")[1],
        fake_pds.url.split("://")[1],
    ]
    schedule(membership, [bluesky_channel], f"Gone: {page_server.url}/missing")

    assert tick_and_publish() == ["published"]

    assert "embed" not in fake_pds.posts[0].value
    assert [r.path for r in page_server.requests] == ["/missing"]


def test_no_link_card_when_the_post_has_media(
    membership, workspace, bluesky_channel, fake_pds, page_server, settings
):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = [
        page_server.url.split("://")[1],
        fake_pds.url.split("://")[1],
    ]
    link = page_server.og_page("/post", title="Launch day")
    media = make_media(workspace, image_bytes(20, 20))
    post_with_media(membership, bluesky_channel, f"Photo and {link}", [media])

    assert tick_and_publish() == ["published"]

    assert fake_pds.posts[0].value["embed"]["$type"] == "app.bsky.embed.images"
    assert page_server.requests == []


def test_garbage_collected_blob_is_uploaded_again(membership, workspace, bluesky_channel, fake_pds):
    media = make_media(workspace, image_bytes(50, 40), alt_text="x")
    post_with_media(membership, bluesky_channel, "GC", [media])
    fake_pds.inject("POST", "createRecord", status=400, error="BlobNotFound", message="gone")

    assert tick_and_publish() == ["published"]

    assert len(fake_pds.posts) == 1
    assert len(fake_pds.requests_to("POST", "uploadBlob")) == 2
    assert len(fake_pds.requests_to("POST", "createRecord")) == 2


def test_image_the_pds_refuses_fails_with_its_message(
    membership, workspace, bluesky_channel, fake_pds
):
    fake_pds.image_max_size = 100  # a PDS stricter than Herald's 1 MB target
    media = make_media(workspace, image_bytes(50, 40))
    post = post_with_media(membership, bluesky_channel, "Too big for this PDS", [media])

    assert tick_and_publish() == ["failed"]

    delivery = post.deliveries.get()
    assert delivery.last_error_code == "blob_too_large"
    assert "This file is too large" in delivery.last_error
    assert fake_pds.posts == []


# -- threads and exactly-once ---------------------------------------------------------------------
def test_three_part_thread_has_correct_root_and_parent_refs(membership, bluesky_channel, fake_pds):
    post = schedule(membership, [bluesky_channel], "1/3 start", "2/3 middle", "3/3 end")

    assert tick_and_publish() == ["published"]

    first, second, third = sorted(fake_pds.posts, key=lambda p: p.value["text"])
    assert "reply" not in first.value
    root = {"uri": first.uri, "cid": first.cid}
    assert {k: second.value["reply"]["root"][k] for k in root} == root
    assert {k: second.value["reply"]["parent"][k] for k in root} == root
    assert {k: third.value["reply"]["root"][k] for k in root} == root
    assert third.value["reply"]["parent"]["uri"] == second.uri
    assert third.value["reply"]["parent"]["cid"] == second.cid
    delivery = post.deliveries.get()
    assert [s["remote_id"] for s in delivery.part_states] == [first.uri, second.uri, third.uri]
    assert delivery.remote_urls[0] == (
        f"https://bsky.app/profile/{ALICE_DID}/post/{record_rkey(first.uri)}"
    )
    for state, stored in zip(delivery.part_states, (first, second, third), strict=True):
        assert stored.rkey == state["handle"]["rkey"]  # the rkey Herald chose
        assert stored.value["createdAt"] == state["handle"]["created_at"]


def test_crash_after_part_two_resumes_at_part_three(
    membership, bluesky_channel, fake_pds, settings, monkeypatch
):
    settings.HERALD_LEASE_SECONDS = 60
    post = schedule(membership, [bluesky_channel], "one", "two", "three")
    real_build = BlueskyNetwork._build_record

    def dying_build(self, context):
        if context.index == 2:
            raise KeyboardInterrupt("worker killed")
        return real_build(self, context)

    monkeypatch.setattr(BlueskyNetwork, "_build_record", dying_build)
    with pytest.raises(KeyboardInterrupt):
        tick_and_publish()
    monkeypatch.setattr(BlueskyNetwork, "_build_record", real_build)
    assert sorted(p.value["text"] for p in fake_pds.posts) == ["one", "two"]

    assert tick_and_publish(timezone.now() + timedelta(seconds=120)) == ["published"]

    by_text = {p.value["text"]: p for p in fake_pds.posts}
    assert sorted(by_text) == ["one", "three", "two"]
    assert by_text["three"].value["reply"]["root"]["uri"] == by_text["one"].uri
    assert by_text["three"].value["reply"]["parent"]["uri"] == by_text["two"].uri
    assert by_text["three"].value["reply"]["parent"]["cid"] == by_text["two"].cid
    assert post.deliveries.get().status == DeliveryStatus.PUBLISHED


@pytest.mark.parametrize(
    "fault",
    [
        {"reset_after_handling": True},  # TCP reset: atproto NetworkError
        {"close_after_handling": True},  # clean close: raw httpx.RemoteProtocolError
    ],
)
def test_record_stored_before_the_connection_broke_is_reconciled_without_duplicate(
    membership, bluesky_channel, fake_pds, fault
):
    post = schedule(membership, [bluesky_channel], "Only once please")
    fake_pds.inject("POST", "createRecord", **fault)

    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    assert delivery.last_error_code == "network_error"
    assert delivery.part_states[0]["in_flight"] is True
    assert len(fake_pds.posts) == 1  # it did reach the PDS

    assert tick_and_publish(timezone.now() + LATER) == ["published"]

    assert len(fake_pds.posts) == 1
    assert len(fake_pds.requests_to("POST", "createRecord")) == 1  # found with getRecord
    delivery.refresh_from_db()
    assert delivery.part_states[0]["remote_id"] == fake_pds.posts[0].uri
    assert delivery.part_states[0]["extra"]["cid"] == fake_pds.posts[0].cid


def test_timeout_after_the_record_was_stored_is_reconciled(
    membership, bluesky_channel, fake_pds, settings
):
    settings.HERALD_NETWORK_TIMEOUT = 0.5
    post = schedule(membership, [bluesky_channel], "Slow server")
    fake_pds.inject("POST", "createRecord", delay=1.5)

    assert tick_and_publish() == ["retry"]
    assert post.deliveries.get().last_error_code == "timeout"
    wait_until(lambda: fake_pds.posts)  # the slow server does store it, after we gave up

    fake_pds.requests.clear()
    assert tick_and_publish(timezone.now() + LATER) == ["published"]
    assert len(fake_pds.posts) == 1
    assert fake_pds.requests_to("POST", "createRecord") == []


def test_generic_500_is_checked_with_get_record_then_retried(membership, bluesky_channel, fake_pds):
    post = schedule(membership, [bluesky_channel], "Server hiccup")
    fake_pds.inject("POST", "createRecord", status=500)

    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    assert delivery.last_error_code == "server_error_500"
    assert fake_pds.posts == []
    assert len(fake_pds.requests_to("GET", "getRecord")) == 1  # looked before giving up

    assert tick_and_publish(timezone.now() + LATER) == ["published"]
    assert len(fake_pds.posts) == 1
    assert fake_pds.posts[0].rkey == delivery.part_states[0]["handle"]["rkey"]


def test_duplicate_rkey_500_is_recognised_as_already_published(
    membership, bluesky_channel, fake_pds
):
    """The PDS stored the record but the answer was lost; the resend meets the 500 of an
    existing rkey, and getRecord shows it is ours."""
    post = schedule(membership, [bluesky_channel], "Stored on the first try")
    fake_pds.inject("POST", "createRecord", reset_after_handling=True)
    assert tick_and_publish() == ["retry"]
    delivery = post.deliveries.get()
    delivery.part_states[0]["in_flight"] = False  # pretend the outcome looked certain
    delivery.save(update_fields=["part_states"])

    assert tick_and_publish(timezone.now() + LATER) == ["published"]

    assert len(fake_pds.posts) == 1
    assert len(fake_pds.requests_to("POST", "createRecord")) == 2


def test_rkey_taken_by_another_record_moves_to_a_new_rkey(
    membership, bluesky_channel, fake_pds, settings, monkeypatch
):
    taken = tid.next_tid()
    client = BlueskyNetwork(bluesky_channel).client
    from atproto import models

    client.com.atproto.repo.create_record(
        models.ComAtprotoRepoCreateRecord.Data(
            repo=ALICE_DID,
            collection="app.bsky.feed.post",
            rkey=taken,
            record={
                "$type": "app.bsky.feed.post",
                "text": "older",
                "createdAt": "2020-01-01T00:00:00Z",
            },
        )
    )
    handles = iter([taken])
    real_next = tid.next_tid
    monkeypatch.setattr(tid, "next_tid", lambda: next(handles, None) or real_next())
    post = schedule(membership, [bluesky_channel], "Newer")

    assert tick_and_publish() == ["retry"]
    assert tick_and_publish(timezone.now() + LATER) == ["published"]

    texts = sorted(p.value["text"] for p in fake_pds.posts)
    assert texts == ["Newer", "older"]
    assert (
        fake_pds.get_record(f"at://{ALICE_DID}/app.bsky.feed.post/{taken}").value["text"] == "older"
    )
    assert post.deliveries.get().part_states[0]["handle"]["rkey"] != taken


def test_rate_limit_reschedules_at_the_reset_time(membership, bluesky_channel, fake_pds):
    post = schedule(membership, [bluesky_channel], "Hold on")
    fake_pds.rate_limit(reset_in_seconds=600, with_retry_after=False)
    before = timezone.now()

    assert tick_and_publish() == ["rate_limited"]

    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.SCHEDULED
    assert delivery.last_error_code == "rate_limited"
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 590 <= wait <= 610  # from RateLimit-Reset (epoch seconds)
    assert tick_and_publish() == []  # not before then
    assert tick_and_publish(timezone.now() + timedelta(seconds=620)) == ["published"]
    assert len(fake_pds.posts) == 1


def test_rate_limit_honours_retry_after(membership, bluesky_channel, fake_pds):
    post = schedule(membership, [bluesky_channel], "Hold on")
    fake_pds.rate_limit(reset_in_seconds=90, with_retry_after=True)
    before = timezone.now()

    assert tick_and_publish() == ["rate_limited"]

    wait = (post.deliveries.get().next_attempt_at - before).total_seconds()
    assert 85 <= wait <= 95


def test_server_error_is_retried_then_fails_after_max_attempts(
    membership, bluesky_channel, fake_pds, settings
):
    settings.HERALD_MAX_ATTEMPTS = 2
    post = schedule(membership, [bluesky_channel], "Down")
    fake_pds.inject("POST", "createRecord", status=503, times=5)

    assert tick_and_publish() == ["retry"]
    assert tick_and_publish(timezone.now() + LATER) == ["failed"]

    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "Gave up after 2 attempts" in delivery.last_error
    assert fake_pds.posts == []
    assert Channel.objects.get(pk=bluesky_channel.pk).status == ChannelStatus.ACTIVE


def test_rejected_record_fails_with_the_pds_message(membership, bluesky_channel, fake_pds):
    post = schedule(membership, [bluesky_channel], "Refused")
    fake_pds.inject(
        "POST", "createRecord", status=400, error="InvalidRequest", message="Nope: bad facet"
    )

    assert tick_and_publish() == ["failed"]

    delivery = post.deliveries.get()
    assert delivery.last_error == "Bluesky rejected the post: Nope: bad facet"
    assert delivery.attempt_log.get().http_status == 400


def test_payload_too_large_is_permanent(membership, workspace, bluesky_channel, fake_pds):
    fake_pds.blob_limit = 1000
    video = make_media(
        workspace, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 5000, kind="video", mime_type="video/mp4"
    )
    post = post_with_media(membership, bluesky_channel, "Big video", [video])

    assert tick_and_publish() == ["failed"]

    assert post.deliveries.get().last_error_code == "too_large"


# -- sessions ------------------------------------------------------------------------------------
def test_session_is_reused_never_a_login_per_post(membership, bluesky_channel, fake_pds):
    for number in range(3):
        schedule(membership, [bluesky_channel], f"Post {number}")

    assert tick_and_publish() == ["published"] * 3

    assert fake_pds.session_creations[ALICE_HANDLE] == 1  # the fixture's sign-in only
    assert fake_pds.refreshes == 0


def test_expired_access_token_is_refreshed_and_the_new_session_persisted(
    membership, bluesky_channel, fake_pds
):
    old = stored_session(bluesky_channel)
    version = Channel.objects.get(pk=bluesky_channel.pk).credentials_version
    # Two and a half hours pass on the PDS: the access token is dead (400 ExpiredToken, not 401)
    # but the SDK, judging by its own clock, does not know.
    fake_pds.advance(2.5 * 3600)
    schedule(membership, [bluesky_channel], "After a long pause")

    assert tick_and_publish() == ["published"]

    assert len(fake_pds.posts) == 1
    assert fake_pds.refreshes == 1
    assert fake_pds.session_creations[ALICE_HANDLE] == 1
    channel = Channel.objects.get(pk=bluesky_channel.pk)
    new = Session.decode(channel.credentials["session"])
    assert new.refresh_jwt != old.refresh_jwt and new.access_jwt != old.access_jwt
    assert channel.credentials_version == version + 1
    assert channel.token_refreshed_at is not None
    assert channel.status == ChannelStatus.ACTIVE
    # The refreshed session is the one that works from now on.
    fake_pds.advance(2.5 * 3600)
    schedule(membership, [bluesky_channel], "Later still")
    assert tick_and_publish() == ["published"]
    assert fake_pds.refreshes == 2


def test_access_token_near_expiry_is_refreshed_before_the_call(
    membership, workspace, short_lived_pds
):
    channel = make_bluesky_channel(workspace, short_lived_pds)
    old = stored_session(channel)
    schedule(membership, [channel], "Fresh token please")

    assert tick_and_publish() == ["published"]

    assert short_lived_pds.refreshes >= 1
    create = short_lived_pds.requests_to("POST", "createRecord")[0]
    assert create.header("authorization") != f"Bearer {old.access_jwt}"
    assert stored_session(channel).access_jwt == create.header("authorization")[7:]


def test_stored_credentials_are_encrypted_after_a_refresh(workspace, short_lived_pds):
    channel = make_bluesky_channel(workspace, short_lived_pds)
    assert BlueskyNetwork(channel).refresh_credentials() is True

    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM scheduler_channel WHERE id = %s", [channel.pk])
        (raw,) = cursor.fetchone()
    session = stored_session(channel)
    assert session.refresh_jwt not in raw and session.access_jwt not in raw


def test_concurrent_refresh_does_not_lose_the_session(workspace, short_lived_pds):
    fake = short_lived_pds
    channel = make_bluesky_channel(workspace, fake)
    # Two workers load the same stored session.
    first = BlueskyNetwork(Channel.objects.get(pk=channel.pk))
    second = BlueskyNetwork(Channel.objects.get(pk=channel.pk))
    first.client, second.client  # noqa: B018 - both connect now
    # The first refreshes twice (rotating the refresh token twice) and stores each result.
    assert first.refresh_credentials() and first.refresh_credentials()
    newest = stored_session(channel)
    # The second refreshes its old token inside the grace window: it gets a valid session, but
    # one the chain has moved past; storing it would lose the channel two hours later.
    assert second.refresh_credentials()
    assert stored_session(channel).refresh_jwt == newest.refresh_jwt

    fake.advance(3 * 3600)  # past every grace window
    profile = BlueskyNetwork(Channel.objects.get(pk=channel.pk)).verify_credentials()

    assert profile.remote_id == ALICE_DID
    assert fake.session_creations[ALICE_HANDLE] == 1
    assert Channel.objects.get(pk=channel.pk).status == ChannelStatus.ACTIVE


def test_two_workers_refreshing_at_once_both_succeed_and_one_session_is_kept(
    workspace, short_lived_pds
):
    channel = make_bluesky_channel(workspace, short_lived_pds)
    first = BlueskyNetwork(Channel.objects.get(pk=channel.pk))
    second = BlueskyNetwork(Channel.objects.get(pk=channel.pk))
    first.client, second.client  # noqa: B018

    assert first.refresh_credentials() and second.refresh_credentials()
    # The second refresh (same grant, same jti) must not replace the first...
    kept = stored_session(channel)
    # ...and when it refreshes again, descending from a grant equal to the stored one, it does.
    assert second.refresh_credentials()
    assert stored_session(channel).refresh_jwt != kept.refresh_jwt
    short_lived_pds.advance(3 * 3600)
    assert BlueskyNetwork(Channel.objects.get(pk=channel.pk)).verify_credentials()


def test_stale_refresh_token_is_retried_with_the_stored_session(workspace, short_lived_pds):
    fake = short_lived_pds
    channel = make_bluesky_channel(workspace, fake)
    stale = BlueskyNetwork(Channel.objects.get(pk=channel.pk))
    stale.client  # noqa: B018 - loaded, then left idle
    other = BlueskyNetwork(Channel.objects.get(pk=channel.pk))
    assert other.refresh_credentials()
    fake.advance(3 * 3600)  # the stale worker's refresh token is now revoked

    profile = stale.verify_credentials()

    assert profile.handle == ALICE_HANDLE
    assert fake.session_creations[ALICE_HANDLE] == 1
    assert Channel.objects.get(pk=channel.pk).status == ChannelStatus.ACTIVE


def test_revoked_app_password_marks_the_channel_and_notifies(
    membership, bluesky_channel, fake_pds, caplog, django_capture_on_commit_callbacks
):
    fake_pds.revoke_app_password(ALICE_HANDLE, revoke_access_tokens=True)
    post = schedule(membership, [bluesky_channel], "Will wait for reconnect")

    with (
        caplog.at_level(logging.INFO, logger="herald.events"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert tick_and_publish() == ["needs_reconnect"]

    channel = Channel.objects.get(pk=bluesky_channel.pk)
    assert channel.status == ChannelStatus.NEEDS_RECONNECT
    assert "no longer accepts Herald's session" in channel.status_detail
    delivery = post.deliveries.get()
    assert delivery.status == DeliveryStatus.SCHEDULED  # kept for after the reconnect
    assert "Reconnect" in delivery.last_error
    assert any("channel.needs_reconnect" in r.getMessage() for r in caplog.records)
    assert fake_pds.posts == []


def test_remembered_app_password_signs_in_again_when_the_session_is_lost(
    membership, workspace, fake_pds
):
    channel = make_bluesky_channel(workspace, fake_pds, app_password=ALICE_APP_PASSWORD)
    fake_pds.revoke_app_password(ALICE_HANDLE, revoke_access_tokens=True)
    fake_pds.add_app_password(ALICE_HANDLE, ALICE_APP_PASSWORD, name="again")
    schedule(membership, [channel], "Signed in again")

    assert tick_and_publish() == ["published"]

    assert sum(fake_pds.session_creations.values()) == 2  # by DID the second time
    assert Channel.objects.get(pk=channel.pk).status == ChannelStatus.ACTIVE


def test_transient_refresh_failure_does_not_mark_the_channel(
    membership, workspace, short_lived_pds
):
    channel = make_bluesky_channel(workspace, short_lived_pds)
    short_lived_pds.inject("POST", "refreshSession", status=503)
    post = schedule(membership, [channel], "Refresh hiccup")

    assert tick_and_publish() == ["retry"]

    assert Channel.objects.get(pk=channel.pk).status == ChannelStatus.ACTIVE
    assert post.deliveries.get().last_error_code == "server_error_503"
    assert channel_flows.verify_channel(channel) is True
    assert tick_and_publish(timezone.now() + LATER) == ["published"]


def test_transient_failure_during_verification_keeps_the_channel(bluesky_channel, fake_pds):
    fake_pds.inject("GET", "getSession", reset_before_handling=True)

    assert channel_flows.verify_channel(bluesky_channel) is True
    assert Channel.objects.get(pk=bluesky_channel.pk).status == ChannelStatus.ACTIVE


def test_verification_reads_the_profile_and_catches_a_revoked_password(bluesky_channel, fake_pds):
    profile = BlueskyNetwork(bluesky_channel).verify_credentials()
    assert (profile.remote_id, profile.handle, profile.avatar_url) == (
        ALICE_DID,
        ALICE_HANDLE,
        ALICE_AVATAR,
    )

    fake_pds.revoke_app_password(ALICE_HANDLE, revoke_access_tokens=True)
    assert channel_flows.verify_channel(bluesky_channel) is False
    assert Channel.objects.get(pk=bluesky_channel.pk).status == ChannelStatus.NEEDS_RECONNECT


def test_taken_down_account_fails_without_retrying(membership, bluesky_channel, fake_pds):
    fake_pds.set_account_status(ALICE_HANDLE, "takendown")
    post = schedule(membership, [bluesky_channel], "Gone")

    assert tick_and_publish() == ["failed"]
    assert post.deliveries.get().last_error_code == "account_takedown"


# -- connecting ----------------------------------------------------------------------------------
def test_connect_with_a_custom_pds_url_signs_in_there(workspace, fake_pds, settings):
    settings.BLUESKY_DEFAULT_PDS = "http://127.0.0.1:9"  # must not be used
    settings.BLUESKY_PLC_URL = "http://127.0.0.1:9"

    channel = connect_bluesky(
        workspace,
        identifier="@Alice.test",
        app_password=ALICE_APP_PASSWORD,
        server_url=fake_pds.url + "/",
    )

    assert channel.server_url == fake_pds.url
    assert (channel.remote_id, channel.handle) == (ALICE_DID, ALICE_HANDLE)
    assert (channel.display_name, channel.avatar_url) == ("Alice", ALICE_AVATAR)
    assert channel.status == ChannelStatus.ACTIVE
    assert "app_password" not in channel.credentials
    session = stored_session(channel)
    assert session.did == ALICE_DID and session.pds_endpoint.startswith(fake_pds.url)
    assert fake_pds.session_creations["alice.test"] == 1
    assert channel.limits["max_characters"] == 300


def test_connect_by_handle_finds_the_pds_in_the_did_document(workspace, settings, fake_plc):
    home = FakePDS().start()  # alice's own PDS, known only through her DID document
    entryway = FakePDS(with_default_account=False).start()
    try:
        entryway.add_handle(ALICE_HANDLE, ALICE_DID)
        fake_plc.documents[ALICE_DID] = home.did_doc(home.account(ALICE_HANDLE))
        settings.BLUESKY_DEFAULT_PDS = entryway.url

        channel = connect_bluesky(
            workspace, identifier=ALICE_HANDLE, app_password=ALICE_APP_PASSWORD
        )

        assert channel.server_url == home.url
        assert home.session_creations[ALICE_HANDLE] == 1
        assert entryway.requests_to("POST", "createSession") == []
        assert fake_plc.requests_to("GET", ALICE_DID)
    finally:
        home.stop()
        entryway.stop()


def test_connect_with_an_email_signs_in_at_the_default_pds(workspace, fake_pds):
    channel = connect_bluesky(
        workspace, identifier="alice@example.test", app_password=ALICE_APP_PASSWORD
    )
    assert channel.remote_id == ALICE_DID
    assert fake_pds.session_creations["alice@example.test"] == 1


def test_connect_refuses_a_private_pds_url(workspace, fake_pds, settings):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = []
    with pytest.raises(InvalidServerURL):
        connect_bluesky(
            workspace,
            identifier=ALICE_HANDLE,
            app_password=ALICE_APP_PASSWORD,
            server_url=fake_pds.url,
        )
    assert fake_pds.requests == []


def test_connect_with_a_wrong_app_password_says_what_to_do(workspace, fake_pds):
    with pytest.raises(NetworkError) as raised:
        connect_bluesky(
            workspace, identifier=ALICE_HANDLE, app_password="nope", server_url=fake_pds.url
        )
    assert raised.value.category == ErrorCategory.AUTH
    assert "App passwords" in raised.value.message
    assert not Channel.objects.exists()


def test_connect_rate_limited_sign_in_says_when_to_retry(workspace, fake_pds):
    fake_pds.session_rate_limit = 0
    with pytest.raises(NetworkError, match="Too many sign-in attempts"):
        connect_bluesky(
            workspace,
            identifier=ALICE_HANDLE,
            app_password=ALICE_APP_PASSWORD,
            server_url=fake_pds.url,
        )


def test_connect_to_an_unreachable_pds_is_a_transient_error(workspace, page_server):
    closed = page_server.url
    page_server.stop()  # nothing listens there any more

    with pytest.raises(NetworkError) as raised:
        connect_bluesky(workspace, identifier=ALICE_HANDLE, app_password="x", server_url=closed)

    assert raised.value.category == ErrorCategory.TRANSIENT
    assert "Could not reach" in raised.value.message
    assert not Channel.objects.exists()


def test_reconnecting_replaces_the_session_and_reactivates(workspace, fake_pds):
    channel = connect_bluesky(
        workspace,
        identifier=ALICE_HANDLE,
        app_password=ALICE_APP_PASSWORD,
        server_url=fake_pds.url,
        remember_password=True,
    )
    assert channel.credentials["app_password"] == ALICE_APP_PASSWORD
    channel.mark_needs_reconnect("revoked")

    again = connect_bluesky(
        workspace,
        identifier=ALICE_HANDLE,
        app_password=ALICE_APP_PASSWORD,
        server_url=fake_pds.url,
    )

    assert again.pk == channel.pk
    stored = Channel.objects.get(pk=channel.pk)
    assert stored.status == ChannelStatus.ACTIVE
    assert "app_password" not in stored.credentials  # not remembered this time
    assert stored.credentials["session"] != channel.credentials["session"]


@pytest.fixture
def browser(client, alice):
    client.login(email=alice.email, password=PASSWORD)
    return client


def test_connect_page_connects_the_account(browser, workspace, fake_pds):
    assert "App passwords" in browser.get("/channels/bluesky/connect/").content.decode()

    response = browser.post(
        "/channels/bluesky/connect/",
        {
            "identifier": ALICE_HANDLE,
            "app_password": ALICE_APP_PASSWORD,
            "server_url": fake_pds.url,
            "remember_password": "on",
        },
    )

    assert response.status_code == 302
    channel = Channel.objects.get(workspace=workspace, network="bluesky")
    assert channel.credentials["app_password"] == ALICE_APP_PASSWORD
    assert ALICE_HANDLE in browser.get("/").content.decode()


def test_connect_page_shows_the_error(browser, fake_pds):
    response = browser.post(
        "/channels/bluesky/connect/",
        {"identifier": ALICE_HANDLE, "app_password": "wrong", "server_url": fake_pds.url},
    )

    assert response.status_code == 400
    assert "did not accept that handle and app password" in response.content.decode()
    assert not Channel.objects.exists()


def test_viewer_cannot_open_the_connect_page(client, workspace):
    from accounts.models import Role
    from tests.conftest import add_member

    viewer = add_member(workspace, "viewer@example.com", Role.VIEWER)
    client.login(email=viewer.user.email, password=PASSWORD)
    assert client.get("/channels/bluesky/connect/").status_code == 403


# -- record keys ---------------------------------------------------------------------------------
def test_tids_are_valid_sortable_and_unique():
    tids = [tid.next_tid() for _ in range(2000)]

    assert tids == sorted(tids) and len(set(tids)) == len(tids)
    for value in tids[:20]:
        assert string_formats.validate_tid(value, None) == value
    micros, _ = tid.decode(tids[0])
    assert abs(micros / 1e6 - timezone.now().timestamp()) < 60
    assert tid.encode(0, 0) == "2222222222222"
    assert tid.decode(tid.encode(1_700_000_000_000_000, 513)) == (1_700_000_000_000_000, 513)


def test_pds_on_a_private_address_is_never_contacted(
    membership, bluesky_channel, fake_pds, settings
):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = []  # the fake PDS on 127.0.0.1 is no longer allowed
    requests_before = len(fake_pds.requests)
    post = schedule(membership, [bluesky_channel], "Nowhere to go")

    assert tick_and_publish() == ["failed"]

    delivery = post.deliveries.get()
    assert delivery.last_error_code == "unsafe_server"
    assert "private or local address" in delivery.last_error or "https://" in delivery.last_error
    assert len(fake_pds.requests) == requests_before
    assert fake_pds.posts == []

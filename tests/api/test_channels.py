"""Channels over the API: connect per network, read, rename, pause, delete; schedule and queue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from scheduler.models import Channel, ChannelStatus, Delivery, DeliveryStatus
from tests.fakes.bluesky import ALICE_APP_PASSWORD, ALICE_HANDLE
from tests.fakes.mastodon import DEFAULT_TOKEN
from tests.fixtures.api import API

pytestmark = pytest.mark.django_db

MONDAY_6_UTC = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def error(response):
    return response.json()["error"]


# -- connecting -------------------------------------------------------------------------------------
def test_connect_mastodon_verifies_the_token_with_the_server(api, fake_mastodon, workspace):
    response = api.post(
        f"{API}/channels",
        {"network": "mastodon", "server_url": fake_mastodon.url, "access_token": DEFAULT_TOKEN},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["network"] == "mastodon"
    assert body["handle"].startswith("@alice@")
    assert body["server_url"] == fake_mastodon.url
    assert body["status"] == "active"
    assert body["limits"]["max_characters"] == 500
    assert fake_mastodon.requests_to("GET", r"^/api/v1/accounts/verify_credentials$")
    channel = Channel.objects.get(pk=body["id"])
    assert channel.workspace == workspace
    assert channel.credentials == {"access_token": DEFAULT_TOKEN}
    assert "access_token" not in response.content.decode()


def test_connect_mastodon_with_a_bad_token_saves_nothing(api, fake_mastodon):
    response = api.post(
        f"{API}/channels",
        {"network": "mastodon", "server_url": fake_mastodon.url, "access_token": "wrong"},
        format="json",
    )

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_credentials"
    assert not Channel.objects.exists()


def test_connect_to_an_unreachable_server_is_502(api, fake_mastodon):
    url = fake_mastodon.url
    fake_mastodon.stop()

    response = api.post(
        f"{API}/channels",
        {"network": "mastodon", "server_url": url, "access_token": DEFAULT_TOKEN},
        format="json",
    )

    assert response.status_code == 502
    assert error(response)["code"] == "network_unavailable"
    assert not Channel.objects.exists()


def test_connect_refuses_a_private_server_address(api, settings):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = []

    response = api.post(
        f"{API}/channels",
        {"network": "mastodon", "server_url": "http://127.0.0.1:8080", "access_token": "t"},
        format="json",
    )

    assert response.status_code == 400
    assert "server_url" in error(response)["details"]["fields"]


def test_connect_needs_a_known_network_and_its_fields(api):
    unknown = api.post(f"{API}/channels", {"network": "myspace"}, format="json")
    missing = api.post(f"{API}/channels", {"network": "mastodon"}, format="json")

    assert unknown.status_code == 400
    assert list(error(unknown)["details"]["fields"]) == ["network"]
    assert missing.status_code == 400
    assert set(error(missing)["details"]["fields"]) == {"server_url", "access_token"}


def test_connect_bluesky_signs_in_with_an_app_password(api, fake_pds):
    response = api.post(
        f"{API}/channels",
        {
            "network": "bluesky",
            "handle": ALICE_HANDLE,
            "app_password": ALICE_APP_PASSWORD,
            "server_url": fake_pds.url,
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["network"], body["handle"], body["server_url"]) == (
        "bluesky",
        ALICE_HANDLE,
        fake_pds.url,
    )
    assert fake_pds.requests_to("POST", r"createSession$")


def test_connect_bluesky_with_a_wrong_app_password_is_refused(api, fake_pds):
    response = api.post(
        f"{API}/channels",
        {
            "network": "bluesky",
            "handle": ALICE_HANDLE,
            "app_password": "wrong-pass-word-here",
            "server_url": fake_pds.url,
        },
        format="json",
    )

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_credentials"
    assert not Channel.objects.exists()


def test_connect_threads_with_a_long_lived_token(api, fake_threads):
    token = fake_threads.issue_long_lived_token(fake_threads.default_user_id)

    response = api.post(
        f"{API}/channels", {"network": "threads", "access_token": token}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["network"] == "threads"
    assert Channel.objects.get(pk=response.json()["id"]).remote_id == fake_threads.default_user_id


def test_connect_threads_with_an_unknown_token_is_refused(api, fake_threads):
    response = api.post(
        f"{API}/channels", {"network": "threads", "access_token": "nope"}, format="json"
    )

    assert response.status_code == 400
    assert error(response)["code"] in ("invalid_credentials", "network_rejected")
    assert not Channel.objects.exists()


# -- reading and changing ----------------------------------------------------------------------------
def test_channel_shows_network_handle_status_timezone_and_limits(api, mastodon_channel):
    body = api.get(f"{API}/channels/{mastodon_channel.pk}").json()

    assert {key: body[key] for key in ("network", "handle", "status", "timezone", "paused")} == {
        "network": "mastodon",
        "handle": mastodon_channel.handle,
        "status": "active",
        "timezone": "UTC",
        "paused": False,
    }
    assert body["limits"]["max_media"] == 4
    assert body["limits"]["supports_threads"] is True


def test_rename_change_timezone_and_pause_a_channel(api, mastodon_channel):
    response = api.patch(
        f"{API}/channels/{mastodon_channel.pk}",
        {"name": "Company account", "timezone": "Europe/Berlin", "paused": True},
        format="json",
    )

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["timezone"]) == (
        "Company account",
        "Europe/Berlin",
    )
    mastodon_channel.refresh_from_db()
    assert mastodon_channel.status == ChannelStatus.PAUSED

    resumed = api.patch(f"{API}/channels/{mastodon_channel.pk}", {"paused": False}, format="json")
    assert resumed.json()["status"] == "active"


def test_patch_with_an_unknown_timezone_says_which_field(api, mastodon_channel):
    response = api.patch(
        f"{API}/channels/{mastodon_channel.pk}", {"timezone": "Mars/Olympus"}, format="json"
    )

    assert response.status_code == 400
    assert list(error(response)["details"]["fields"]) == ["timezone"]


def test_delete_removes_the_channel(api, mastodon_channel):
    assert api.delete(f"{API}/channels/{mastodon_channel.pk}").status_code == 204
    assert api.get(f"{API}/channels/{mastodon_channel.pk}").status_code == 404


def test_delete_is_refused_while_a_post_is_being_published(api, membership, mastodon_channel):
    from tests.conftest import schedule

    post = schedule(membership, [mastodon_channel], "in flight")
    post.deliveries.update(status=DeliveryStatus.PUBLISHING)

    response = api.delete(f"{API}/channels/{mastodon_channel.pk}")

    assert response.status_code == 409
    assert Channel.objects.filter(pk=mastodon_channel.pk).exists()


# -- schedule and queue ------------------------------------------------------------------------------
def put_schedule(api, channel, slots, zone="Europe/Berlin"):
    return api.put(
        f"{API}/channels/{channel.pk}/schedule", {"timezone": zone, "slots": slots}, format="json"
    )


def queue_post(api, channel, text, when="queue"):
    response = api.post(
        f"{API}/posts", {"channels": [channel.pk], "text": text, "when": when}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()["deliveries"][0]


@pytest.fixture
def monday():
    with time_machine.travel(MONDAY_6_UTC, tick=False):
        yield


def test_schedule_round_trips(api, mastodon_channel):
    assert api.get(f"{API}/channels/{mastodon_channel.pk}/schedule").json() == {
        "timezone": "UTC",
        "slots": {},
    }

    response = put_schedule(api, mastodon_channel, {"wed": ["13:30", "09:00"], "mon": ["09:00"]})

    assert response.status_code == 200
    assert response.json() == {
        "timezone": "Europe/Berlin",
        "slots": {"mon": ["09:00"], "wed": ["09:00", "13:30"]},
    }
    assert api.get(f"{API}/channels/{mastodon_channel.pk}/schedule").json() == response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Europe/Berlin", "slots": {"mon": ["25:00"]}}, "slots"),
        ({"timezone": "Europe/Berlin", "slots": {"someday": ["09:00"]}}, "slots"),
        ({"timezone": "Nowhere/Land", "slots": {"mon": ["09:00"]}}, "timezone"),
        ({"slots": {"mon": ["09:00"]}}, "timezone"),
    ],
)
def test_invalid_schedule_is_refused_per_field(api, mastodon_channel, body, field):
    response = api.put(f"{API}/channels/{mastodon_channel.pk}/schedule", body, format="json")

    assert response.status_code == 400
    assert field in error(response)["details"]["fields"]


def test_queue_lists_queued_posts_in_order_with_due_times(api, monday, mastodon_channel):
    put_schedule(api, mastodon_channel, {"mon": ["09:00", "13:00"], "tue": ["09:00"]})
    first = queue_post(api, mastodon_channel, "first")
    second = queue_post(api, mastodon_channel, "second")
    urgent = queue_post(api, mastodon_channel, "urgent", when="next")

    body = api.get(f"{API}/channels/{mastodon_channel.pk}/queue").json()

    assert [(item["delivery"], item["text"], item["due_at"]) for item in body["items"]] == [
        (urgent["id"], "urgent", "2026-06-01T07:00:00Z"),
        (first["id"], "first", "2026-06-01T11:00:00Z"),
        (second["id"], "second", "2026-06-02T07:00:00Z"),
    ]
    assert [item["position"] for item in body["items"]] == [1, 2, 3]
    assert body["next_free_slots"][0] == "2026-06-08T07:00:00Z"


def test_reorder_and_shuffle_the_queue(api, monday, mastodon_channel):
    put_schedule(api, mastodon_channel, {"mon": ["09:00", "13:00"], "tue": ["09:00"]})
    ids = [queue_post(api, mastodon_channel, text)["id"] for text in ("a", "b", "c")]

    reordered = api.post(
        f"{API}/channels/{mastodon_channel.pk}/queue/reorder",
        {"delivery_ids": [ids[2], ids[0]]},
        format="json",
    )

    assert reordered.status_code == 200
    assert [item["text"] for item in reordered.json()["items"]] == ["c", "a", "b"]
    assert Delivery.objects.get(pk=ids[2]).due_at == datetime(2026, 6, 1, 7, 0, tzinfo=UTC)

    shuffled = api.post(f"{API}/channels/{mastodon_channel.pk}/queue/shuffle")
    assert shuffled.status_code == 200
    assert sorted(item["delivery"] for item in shuffled.json()["items"]) == sorted(ids)
    assert [item["due_at"] for item in shuffled.json()["items"]] == [
        "2026-06-01T07:00:00Z",
        "2026-06-01T11:00:00Z",
        "2026-06-02T07:00:00Z",
    ]


def test_reorder_with_a_delivery_not_in_the_queue_is_refused(api, monday, mastodon_channel):
    put_schedule(api, mastodon_channel, {"mon": ["09:00"]})

    response = api.post(
        f"{API}/channels/{mastodon_channel.pk}/queue/reorder",
        {"delivery_ids": [123456]},
        format="json",
    )

    assert response.status_code == 400
    assert "delivery_ids" in error(response)["details"]["fields"]


def test_emptying_a_schedule_with_queued_posts_is_a_conflict(api, monday, mastodon_channel):
    put_schedule(api, mastodon_channel, {"mon": ["09:00"]})
    queue_post(api, mastodon_channel, "queued")

    response = put_schedule(api, mastodon_channel, {})

    assert response.status_code == 409
    assert "free slots" in error(response)["message"]


def test_editors_reorder_but_cannot_change_the_schedule(member_api, monday, mastodon_channel):
    from accounts.models import Role

    editor = member_api(Role.EDITOR)

    assert put_schedule(editor, mastodon_channel, {"mon": ["09:00"]}).status_code == 403
    assert editor.post(f"{API}/channels/{mastodon_channel.pk}/queue/shuffle").status_code == 200
    contributor = member_api(Role.CONTRIBUTOR)
    assert (
        contributor.post(f"{API}/channels/{mastodon_channel.pk}/queue/shuffle").status_code == 403
    )

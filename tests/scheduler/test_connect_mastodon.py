"""Connecting a Mastodon account through the web UI: OAuth code flow and existing tokens."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from scheduler.models import Channel, ChannelStatus, MastodonApp
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

CONNECT = "/channels/mastodon/connect/"
CALLBACK = "/channels/mastodon/callback/"


@pytest.fixture
def browser(client, alice):
    client.login(email=alice.email, password=PASSWORD)
    return client


def _start(browser, fake):
    response = browser.post(CONNECT, {"server_url": fake.url})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}" == fake.url
    assert location.path == "/oauth/authorize"
    return parse_qs(location.query)


def test_oauth_round_trip_connects_the_account(browser, fake_mastodon, workspace):
    query = _start(browser, fake_mastodon)
    app = MastodonApp.objects.get(base_url=fake_mastodon.url)
    assert query["client_id"] == [app.client_id]
    assert query["scope"] == ["read:accounts read:statuses write:statuses write:media"]
    code = fake_mastodon.authorize(
        app.client_id, query["redirect_uri"][0], query["scope"][0].split(), state=query["state"][0]
    )

    response = browser.get(CALLBACK, {"code": code, "state": query["state"][0]})

    assert response.status_code == 302
    channel = Channel.objects.get(workspace=workspace)
    assert channel.network == "mastodon"
    assert channel.remote_id == "1"
    assert channel.server_url == fake_mastodon.url
    assert channel.status == ChannelStatus.ACTIVE
    assert channel.limits["max_characters"] == 500
    token = channel.credentials["access_token"]
    assert fake_mastodon.tokens[token].account_id == "1"
    page = browser.get("/").content.decode()
    assert channel.handle in page


def test_app_is_registered_once_per_instance(browser, fake_mastodon):
    _start(browser, fake_mastodon)
    _start(browser, fake_mastodon)
    assert len(fake_mastodon.requests_to("POST", r"^/api/v1/apps$")) == 1


def test_callback_with_wrong_state_is_refused(browser, fake_mastodon, workspace):
    query = _start(browser, fake_mastodon)
    app = MastodonApp.objects.get()
    code = fake_mastodon.authorize(
        app.client_id, query["redirect_uri"][0], query["scope"][0].split()
    )

    response = browser.get(CALLBACK, {"code": code, "state": "forged"}, follow=True)

    assert "expired or was not started here" in response.content.decode()
    assert not Channel.objects.filter(workspace=workspace).exists()
    assert fake_mastodon.requests_to("POST", r"^/oauth/token$") == []


def test_connect_with_existing_token(browser, fake_mastodon, workspace):
    response = browser.post(
        CONNECT, {"server_url": fake_mastodon.url, "access_token": "fake-token-alice"}
    )

    assert response.status_code == 302
    channel = Channel.objects.get(workspace=workspace)
    assert channel.credentials == {"access_token": "fake-token-alice"}


def test_bad_token_is_explained_and_nothing_saved(browser, fake_mastodon, workspace):
    response = browser.post(CONNECT, {"server_url": fake_mastodon.url, "access_token": "nope"})

    assert response.status_code == 400
    assert "no longer accepts" in response.content.decode()
    assert not Channel.objects.exists()


def test_private_server_url_is_refused(browser, settings):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = []
    response = browser.post(CONNECT, {"server_url": "http://127.0.0.1:9"})
    assert response.status_code == 400
    assert "https://" in response.content.decode() or "private" in response.content.decode()


def test_reconnect_reactivates_the_channel_and_keeps_its_posts(
    browser, fake_mastodon, mastodon_channel
):
    Channel.objects.filter(pk=mastodon_channel.pk).update(
        status=ChannelStatus.NEEDS_RECONNECT, status_detail="revoked"
    )
    fake_mastodon.add_token("second-token")

    browser.post(CONNECT, {"server_url": fake_mastodon.url, "access_token": "second-token"})

    mastodon_channel.refresh_from_db()
    assert mastodon_channel.status == ChannelStatus.ACTIVE
    assert mastodon_channel.status_detail == ""
    assert mastodon_channel.credentials["access_token"] == "second-token"
    assert Channel.objects.count() == 1


def test_viewer_cannot_connect(client, workspace, fake_mastodon):
    from accounts.models import Role
    from tests.conftest import add_member

    viewer = add_member(workspace, "viewer@example.com", Role.VIEWER)
    client.login(email=viewer.user.email, password=PASSWORD)
    response = client.post(
        CONNECT, {"server_url": fake_mastodon.url, "access_token": "fake-token-alice"}
    )
    assert response.status_code == 403
    assert not Channel.objects.exists()


def test_advertised_token_endpoint_on_a_private_address_is_never_contacted(
    browser, fake_mastodon, workspace, settings
):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = [
        fake_mastodon.url.split("://")[1]
    ]  # this host:port only
    query = _start(browser, fake_mastodon)
    app = MastodonApp.objects.get()
    code = fake_mastodon.authorize(
        app.client_id, query["redirect_uri"][0], query["scope"][0].split(), state=query["state"][0]
    )
    fake_mastodon.inject(
        "GET",
        r"^/.well-known/oauth-authorization-server$",
        status=200,
        body={
            "issuer": fake_mastodon.url,
            "token_endpoint": "https://169.254.169.254/oauth/token",
            "grant_types_supported": ["authorization_code"],
            "scopes_supported": ["read:accounts", "read:statuses", "write:statuses", "write:media"],
        },
    )

    response = browser.get(CALLBACK, {"code": code, "state": query["state"][0]}, follow=True)

    assert "private or local address" in response.content.decode()
    assert not Channel.objects.filter(workspace=workspace).exists()
    assert fake_mastodon.requests_to("POST", r"^/oauth/token$") == []


def test_callback_refuses_a_member_who_may_no_longer_manage_channels(
    browser, alice, fake_mastodon, workspace
):
    from accounts.models import Membership, Role

    query = _start(browser, fake_mastodon)
    app = MastodonApp.objects.get()
    code = fake_mastodon.authorize(
        app.client_id, query["redirect_uri"][0], query["scope"][0].split(), state=query["state"][0]
    )
    Membership.objects.filter(user=alice, workspace=workspace).update(role=Role.EDITOR)

    response = browser.get(CALLBACK, {"code": code, "state": query["state"][0]})

    assert response.status_code == 403
    assert not Channel.objects.exists()
    assert not fake_mastodon.requests_to("POST", r"^/oauth/token$")

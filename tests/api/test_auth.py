"""Tokens, scopes, roles, rate limits and the error shape of the API."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiToken, Membership, Role, TokenScope
from accounts.tokens import create_token, hash_token, revoke_token
from tests.fixtures.api import API, bearer_client

pytestmark = pytest.mark.django_db


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_me_shows_user_workspace_role_and_token_scope(api, membership):
    response = api.get(f"{API}/me")

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "alice@example.com"
    assert body["workspace"] == {
        "id": membership.workspace.pk,
        "name": "Acme",
        "slug": "acme",
        "timezone": "UTC",
    }
    assert body["role"] == "owner"
    assert body["token"]["scope"] == "write"
    assert body["token"]["last_used_at"] is not None


def test_request_without_token_is_401_with_the_error_shape(db):
    response = APIClient().get(f"{API}/me")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response.json()["error"]["message"]
    assert response.json()["error"]["details"] == {}
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer hrld_not-a-real-token", "Bearer ", "Token abc", "x"])
def test_unknown_or_malformed_token_is_401_invalid_token(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(f"{API}/me")

    assert response.status_code == 401
    assert error_code(response) == "invalid_token"


def test_only_the_hash_of_a_token_is_stored(membership):
    token, raw = create_token(membership, name="CI", scope=TokenScope.WRITE)

    stored = ApiToken.objects.get(pk=token.pk)
    assert raw.startswith("hrld_") and len(raw) > 40
    assert stored.token_hash == hash_token(raw)
    assert raw not in {stored.token_hash, stored.prefix, stored.name}
    assert raw.startswith(stored.prefix)


def test_revoked_token_stops_working_at_once(membership):
    client = bearer_client(membership)
    assert client.get(f"{API}/me").status_code == 200

    revoke_token(ApiToken.objects.get(user=membership.user))

    response = client.get(f"{API}/me")
    assert response.status_code == 401
    assert error_code(response) == "invalid_token"


def test_token_of_someone_removed_from_the_workspace_stops_working(membership):
    client = bearer_client(membership)
    Membership.objects.filter(pk=membership.pk).delete()

    assert client.get(f"{API}/me").status_code == 401


def test_read_token_reads_but_cannot_write(read_api, mastodon_channel):
    assert read_api.get(f"{API}/channels").status_code == 200

    response = read_api.post(
        f"{API}/posts",
        {"channels": [mastodon_channel.pk], "text": "hi", "when": "now"},
        format="json",
    )

    assert response.status_code == 403
    assert error_code(response) == "insufficient_scope"
    assert read_api.patch(f"{API}/channels/{mastodon_channel.pk}", {"name": "x"}).status_code == 403


def test_viewer_reads_but_cannot_compose_even_with_a_write_token(member_api, mastodon_channel):
    viewer = member_api(Role.VIEWER)

    assert viewer.get(f"{API}/posts").status_code == 200
    response = viewer.post(
        f"{API}/posts",
        {"channels": [mastodon_channel.pk], "text": "hi", "when": "now"},
        format="json",
    )
    assert response.status_code == 403
    assert error_code(response) == "forbidden"


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.OWNER, True), (Role.ADMIN, True), (Role.EDITOR, False), (Role.CONTRIBUTOR, False)],
)
def test_only_owners_and_admins_manage_channels_and_webhooks(
    member_api, mastodon_channel, role, allowed
):
    client = member_api(role)

    rename = client.patch(f"{API}/channels/{mastodon_channel.pk}", {"name": "Main"}, format="json")
    hook = client.post(
        f"{API}/webhooks",
        {"url": "http://127.0.0.1:9/hook", "events": ["delivery.published"]},
        format="json",
    )

    assert (rename.status_code, hook.status_code) == ((200, 201) if allowed else (403, 403))


def test_over_the_rate_limit_answers_429_with_retry_after(api, settings):
    settings.HERALD_API_RATE_LIMIT = 3

    statuses = [api.get(f"{API}/me").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = api.get(f"{API}/me")
    assert error_code(response) == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["error"]["details"]["retry_after"] == int(response["Retry-After"])


def test_rate_limit_is_per_token(membership, settings):
    settings.HERALD_API_RATE_LIMIT = 1
    first, second = bearer_client(membership), bearer_client(membership)

    assert first.get(f"{API}/me").status_code == 200
    assert first.get(f"{API}/me").status_code == 429
    assert second.get(f"{API}/me").status_code == 200


def test_malformed_json_is_a_parse_error(api):
    response = api.generic("POST", f"{API}/posts", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert error_code(response) == "parse_error"


def test_wrong_content_type_is_415(api):
    response = api.generic("POST", f"{API}/posts", "text=hi", content_type="text/plain")

    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"


def test_unsupported_method_is_405_in_the_error_shape(api):
    response = api.put(f"{API}/posts", {}, format="json")

    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"


def test_create_api_token_command_prints_a_working_token(membership):
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "create_api_token",
        "--email",
        "Alice@Example.com",
        "--workspace",
        "acme",
        "--scope",
        "write",
        "--name",
        "Zapier",
        stdout=out,
        stderr=err,
    )

    raw = out.getvalue().strip()
    token = ApiToken.objects.get(token_hash=hash_token(raw))
    assert (token.name, token.scope, token.user, token.workspace) == (
        "Zapier",
        "write",
        membership.user,
        membership.workspace,
    )
    assert "shown once" in err.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(f"{API}/me").json()["token"]["name"] == "Zapier"


def test_create_api_token_command_refuses_a_workspace_the_user_is_not_in(membership, bob):
    with pytest.raises(CommandError, match="not a member"):
        call_command("create_api_token", "--email", "bob@example.com", "--workspace", "acme")
    assert not ApiToken.objects.exists()


def test_create_api_token_command_defaults_to_read_scope(membership):
    out = io.StringIO()
    call_command(
        "create_api_token",
        "--email",
        "alice@example.com",
        "--workspace",
        "acme",
        stdout=out,
        stderr=io.StringIO(),
    )

    assert ApiToken.objects.get(token_hash=hash_token(out.getvalue().strip())).scope == "read"

"""The settings page where people create and revoke their API tokens."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.tokens import create_token
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

PAGE = "/settings/tokens/"


@pytest.fixture
def browser(client, alice):
    client.login(email="alice@example.com", password=PASSWORD)
    return client


def test_created_token_is_shown_once_and_works(browser, membership):
    response = browser.post(PAGE, {"name": "Zapier", "scope": "write"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    raw = re.search(r'value="(hrld_[\w-]+)"', response.content.decode()).group(1)
    token = ApiToken.objects.get()
    assert (token.name, token.scope, token.user, token.workspace) == (
        "Zapier",
        "write",
        membership.user,
        membership.workspace,
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/me").json()["token"]["scope"] == "write"

    listing = browser.get(PAGE).content.decode()
    assert "Zapier" in listing
    assert raw not in listing
    assert token.prefix in listing


def test_token_needs_a_name(browser):
    response = browser.post(PAGE, {"name": "  ", "scope": "read"})

    assert response.status_code == 400
    assert "Give the token a name" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoked_token_stops_working(browser, membership):
    token, raw = create_token(membership, name="old", scope="read")

    response = browser.post(f"/settings/tokens/{token.pk}/revoke/")

    assert response.status_code == 302
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/me").status_code == 401
    assert "Revoked" in browser.get(PAGE).content.decode()


def test_someone_elses_token_cannot_be_revoked_or_seen(browser, bob, other_workspace):
    from accounts.models import Membership

    theirs, _ = create_token(
        Membership.objects.get(user=bob, workspace=other_workspace), name="Globex CI"
    )

    assert browser.post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404
    assert "Globex CI" not in browser.get(PAGE).content.decode()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_page_needs_a_login(client, db):
    response = client.get(PAGE)

    assert response.status_code == 302
    assert "/login/" in response["Location"]

"""Login throttling (django-axes): after N wrong passwords even the right one is refused."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    return 3


@pytest.mark.parametrize(
    ("path", "fields"),
    [("/login/", {}), ("/admin/login/", {"next": "/admin/"})],
)
def test_right_password_is_refused_after_too_many_wrong_ones(alice, path, fields):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client = Client()
    for attempt in range(3):
        response = client.post(
            path, {"username": alice.email, "password": f"wrong{attempt}", **fields}
        )
        assert response.status_code in (200, 429)

    response = client.post(path, {"username": alice.email, "password": PASSWORD, **fields})

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302  # still logged out


def test_a_right_password_before_the_limit_resets_the_count(alice):
    client = Client()
    for _ in range(2):
        client.post("/login/", {"username": alice.email, "password": "wrong"})
    assert (
        client.post("/login/", {"username": alice.email, "password": PASSWORD}).status_code == 302
    )
    client.post("/logout/")
    for _ in range(2):
        client.post("/login/", {"username": alice.email, "password": "wrong"})

    assert (
        client.post("/login/", {"username": alice.email, "password": PASSWORD}).status_code == 302
    )


def test_another_email_from_the_same_address_is_not_locked(alice, bob):
    client = Client()
    for _ in range(3):
        client.post("/login/", {"username": alice.email, "password": "wrong"})

    assert client.post("/login/", {"username": bob.email, "password": PASSWORD}).status_code == 302

"""Signed, expiring public URLs for media files (what Threads downloads)."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import signing
from django.utils import timezone

from scheduler.public_media import SALT, public_base_url_problem, public_media_url
from tests.fixtures.threads import make_image, png_bytes

pytestmark = pytest.mark.django_db


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_signed_url_serves_the_file_without_login(client, membership):
    media = make_image(membership)
    url = public_media_url(media)

    assert url.startswith("http://testserver/public/media/")
    response = client.get(path_of(url))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == png_bytes()
    assert response["Cache-Control"] == "private, no-store"
    assert client.head(path_of(url)).status_code == 200


def test_another_medias_url_cannot_be_derived_from_a_valid_one(client, membership):
    first, second = make_image(membership), make_image(membership)
    token = path_of(public_media_url(first)).split("/")[3]
    payload, timestamp, signature = token.rsplit(":", 2)
    # Point the signed payload at the second file and keep the first file's signature.
    claim = signing.loads(token, salt=SALT)
    forged_payload = signing.b64_encode(
        json.dumps({**claim, "media": second.pk}, separators=(",", ":")).encode()
    ).decode()
    forged = f"{forged_payload}:{timestamp}:{signature}"

    assert forged_payload != payload
    assert client.get(f"/public/media/{forged}/photo.png").status_code == 404
    assert client.get(path_of(public_media_url(second))).status_code == 200


def test_tampered_signature_is_refused(client, membership):
    media = make_image(membership)
    path = path_of(public_media_url(media))
    token = path.split("/")[3]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    response = client.get(path.replace(token, forged))

    assert response.status_code == 404


def test_token_for_another_salt_or_made_up_is_refused(client, membership):
    media = make_image(membership)
    other = signing.dumps({"media": media.pk, "sha": media.checksum[:16]}, salt="something-else")

    assert client.get(f"/public/media/{other}/photo.png").status_code == 404
    assert client.get("/public/media/not-a-token/photo.png").status_code == 404


def test_expired_signature_is_refused(client, membership, settings):
    settings.HERALD_PUBLIC_MEDIA_MAX_AGE = 3600
    media = make_image(membership)
    path = path_of(public_media_url(media))

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = client.get(path)

    assert response.status_code == 403
    assert b"expired" in response.content


def test_deleted_media_is_no_longer_served(client, membership):
    media = make_image(membership)
    path = path_of(public_media_url(media))
    media.delete()

    assert client.get(path).status_code == 404


def test_post_is_not_allowed(client, membership):
    path = path_of(public_media_url(make_image(membership)))

    assert client.post(path).status_code == 405


@pytest.mark.parametrize(
    ("public_url", "allowed", "reachable"),
    [
        ("https://herald.example.com", [], True),
        ("https://203.0.113.9", [], False),  # documentation range: not global
        ("https://8.8.8.8", [], True),
        ("http://127.0.0.1:8000", [], False),
        ("http://localhost:8000", [], False),
        ("http://herald.local", [], False),
        ("http://testserver", [], False),
        ("http://127.0.0.1:8000", ["127.0.0.1"], True),
        ("", [], False),
    ],
)
def test_public_base_url_must_be_reachable_from_the_internet(
    settings, public_url, allowed, reachable
):
    settings.PUBLIC_URL = public_url
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = allowed

    assert (public_base_url_problem() is None) is reachable

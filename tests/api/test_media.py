"""Media over the API: upload (checked with Pillow), alt text, listing."""

from __future__ import annotations

import io

import pytest

from accounts.models import Role
from scheduler.models import Media
from tests.fixtures.api import API, png_upload

pytestmark = pytest.mark.django_db


def test_upload_returns_kind_dimensions_size_and_alt_text(api, workspace):
    response = api.post(
        f"{API}/media", {"file": png_upload(width=40, height=30), "alt_text": "A red box"}
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: body[k] for k in ("kind", "mime_type", "width", "height", "alt_text")} == {
        "kind": "image",
        "mime_type": "image/png",
        "width": 40,
        "height": 30,
        "alt_text": "A red box",
    }
    media = Media.objects.get(pk=body["id"])
    assert media.workspace == workspace
    assert body["size"] == media.size == media.file.size


def test_a_file_that_is_not_an_image_is_refused(api):
    fake = io.BytesIO(b"#!/bin/sh\necho not an image\n")
    fake.name = "photo.png"

    response = api.post(f"{API}/media", {"file": fake})

    assert response.status_code == 400
    assert "JPEG, PNG" in response.json()["error"]["details"]["fields"]["file"][0]
    assert not Media.objects.exists()


def test_a_file_over_the_size_limit_is_refused(api, settings):
    settings.MAX_UPLOAD_BYTES = 100

    response = api.post(f"{API}/media", {"file": png_upload(width=200, height=200)})

    assert response.status_code == 400
    assert "most Herald accepts" in response.json()["error"]["details"]["fields"]["file"][0]


def test_upload_needs_multipart_with_a_file(api):
    as_json = api.post(f"{API}/media", {"alt_text": "x"}, format="json")
    no_file = api.post(f"{API}/media", {"alt_text": "x"})

    assert as_json.status_code == 415
    assert no_file.status_code == 400
    assert "file" in no_file.json()["error"]["details"]["fields"]


def test_alt_text_can_be_changed_and_media_listed(api):
    media_id = api.post(f"{API}/media", {"file": png_upload()}).json()["id"]

    response = api.patch(f"{API}/media/{media_id}", {"alt_text": "Described"}, format="json")

    assert response.status_code == 200
    assert Media.objects.get(pk=media_id).alt_text == "Described"
    assert api.get(f"{API}/media/{media_id}").json()["alt_text"] == "Described"
    assert [m["id"] for m in api.get(f"{API}/media").json()["results"]] == [media_id]


def test_viewers_cannot_upload_or_describe(api, member_api):
    media_id = api.post(f"{API}/media", {"file": png_upload()}).json()["id"]
    viewer = member_api(Role.VIEWER)

    assert viewer.post(f"{API}/media", {"file": png_upload()}).status_code == 403
    assert (
        viewer.patch(f"{API}/media/{media_id}", {"alt_text": "x"}, format="json").status_code == 403
    )
    assert viewer.get(f"{API}/media/{media_id}").status_code == 200

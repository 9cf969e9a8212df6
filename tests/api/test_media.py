"""Media over the API: upload (checked with Pillow), alt text, listing."""

from __future__ import annotations

import io
import struct
import zlib

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


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("MAX_UPLOAD_BYTES", 100, "most Herald accepts"),
        ("HERALD_MAX_IMAGE_PIXELS", 100, "200 x 200 pixels"),  # the pixel limit is a setting
    ],
)
def test_a_file_over_a_limit_is_refused(api, settings, setting, value, message):
    setattr(settings, setting, value)

    response = api.post(f"{API}/media", {"file": png_upload(width=200, height=200)})

    assert response.status_code == 400
    assert message in response.json()["error"]["details"]["fields"]["file"][0]


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


def _post_with(api, channel, media_id, when="at"):
    body = {"channels": [channel.pk], "parts": [{"text": "look", "media": [media_id]}]}
    if when == "draft":
        body["when"] = "draft"
    else:
        body.update(when="at", scheduled_at="2031-01-01T10:00:00Z")
    response = api.post(f"{API}/posts", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_contributor_cannot_describe_media_of_an_approved_or_pending_post(
    api, member_api, mastodon_channel
):
    owners = api.post(f"{API}/media", {"file": png_upload(), "alt_text": "Approved"}).json()["id"]
    _post_with(api, mastodon_channel, owners)  # scheduled by the owner: approved
    contributor = member_api(Role.CONTRIBUTOR)
    own = contributor.post(f"{API}/media", {"file": png_upload(), "alt_text": "Mine"}).json()["id"]
    assert _post_with(contributor, mastodon_channel, own)["status"] == "pending_approval"

    for media_id in (owners, own):
        response = contributor.patch(f"{API}/media/{media_id}", {"alt_text": "x"}, format="json")
        assert response.status_code == 403
        assert "approval" in response.json()["error"]["message"]
    assert Media.objects.get(pk=owners).alt_text == "Approved"
    assert Media.objects.get(pk=own).alt_text == "Mine"


def test_contributor_describes_their_own_media_in_a_draft(member_api, mastodon_channel):
    contributor = member_api(Role.CONTRIBUTOR)
    own = contributor.post(f"{API}/media", {"file": png_upload()}).json()["id"]
    _post_with(contributor, mastodon_channel, own, when="draft")

    response = contributor.patch(f"{API}/media/{own}", {"alt_text": "Better"}, format="json")

    assert response.status_code == 200
    assert Media.objects.get(pk=own).alt_text == "Better"


def png_header_only(width: int, height: int) -> io.BytesIO:
    """A PNG that declares `width` x `height` (what Pillow reads first) without the pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    upload = io.BytesIO(data + chunk(b"IEND", b""))
    upload.name = "huge.png"
    return upload


@pytest.mark.parametrize(("width", "height"), [(30000, 30000), (12000, 12000), (8000, 8000)])
def test_an_image_over_the_pixel_limit_is_refused_with_a_clear_error(api, width, height):
    response = api.post(f"{API}/media", {"file": png_header_only(width, height)})

    assert response.status_code == 400
    (message,) = response.json()["error"]["details"]["fields"]["file"]
    assert "Herald accepts up to 50 megapixels" in message
    assert not Media.objects.exists()

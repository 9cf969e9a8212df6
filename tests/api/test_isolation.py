"""Another workspace's objects are invisible: every object endpoint answers 404, never 403."""

from __future__ import annotations

import re

import pytest

from accounts.models import Membership
from scheduler.models import Channel, Delivery, Media, Post, Webhook
from scheduler.webhooks import create_webhook
from tests.conftest import make_mastodon_channel, schedule
from tests.fixtures.api import API, png_upload

pytestmark = pytest.mark.django_db

# (method, path with {kind} placeholder, body): every endpoint that takes an object id.
OBJECT_ENDPOINTS = [
    ("get", "channels/{channel}", None),
    ("patch", "channels/{channel}", {"name": "mine now"}),
    ("delete", "channels/{channel}", None),
    ("get", "channels/{channel}/schedule", None),
    ("put", "channels/{channel}/schedule", {"timezone": "UTC", "slots": {"mon": ["09:00"]}}),
    ("get", "channels/{channel}/queue", None),
    ("post", "channels/{channel}/queue/reorder", {"delivery_ids": [1]}),
    ("post", "channels/{channel}/queue/shuffle", None),
    ("get", "media/{media}", None),
    ("patch", "media/{media}", {"alt_text": "mine now"}),
    ("get", "posts/{post}", None),
    ("patch", "posts/{post}", {"text": "mine now"}),
    ("delete", "posts/{post}", None),
    ("post", "posts/{post}/share-now", None),
    ("post", "posts/{post}/approve", None),
    ("post", "posts/{post}/reject", {"reason": "mine now"}),
    ("get", "posts/{post}/comments", None),
    ("post", "posts/{post}/comments", {"text": "mine now"}),
    ("get", "deliveries/{delivery}", None),
    ("post", "deliveries/{delivery}/retry", None),
    ("get", "webhooks/{webhook}", None),
    ("delete", "webhooks/{webhook}", None),
    ("get", "webhooks/{webhook}/deliveries", None),
]


@pytest.fixture
def globex_objects(bob, other_workspace, fake_mastodon, bob_api):
    """One of each object in Bob's workspace, Globex."""
    membership = Membership.objects.get(user=bob, workspace=other_workspace)
    channel = make_mastodon_channel(other_workspace, fake_mastodon, remote_id="77")
    post = schedule(membership, [channel], "Globex secret")
    media = bob_api.post(f"{API}/media", {"file": png_upload()}).json()["id"]
    webhook, _ = create_webhook(
        membership, url="http://127.0.0.1:9/hook", events=["delivery.published"]
    )
    return {
        "channel": channel.pk,
        "post": post.pk,
        "delivery": post.deliveries.get().pk,
        "media": media,
        "webhook": webhook.pk,
    }


@pytest.mark.parametrize(
    ("method", "template", "body"),
    OBJECT_ENDPOINTS,
    ids=[f"{m.upper()} {t}" for m, t, _ in OBJECT_ENDPOINTS],
)
def test_other_workspaces_object_is_not_found(api, globex_objects, method, template, body):
    path = template.format(**globex_objects)
    snapshot = _snapshot()

    response = getattr(api, method)(f"{API}/{path}", body, format="json")

    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
    assert "Globex" not in response.content.decode()
    assert _snapshot() == snapshot  # nothing changed


def test_every_object_endpoint_is_covered(api):
    """A new endpoint with an id must join OBJECT_ENDPOINTS (and so this isolation test)."""
    schema = api.get(f"{API}/schema/?format=json").json()
    expected = {
        (method, re.sub(r"\{id\}", "{x}", path.removeprefix(f"{API}/")))
        for path, operations in schema["paths"].items()
        if "{id}" in path
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    covered = {(m, re.sub(r"\{\w+\}", "{x}", t)) for m, t, _ in OBJECT_ENDPOINTS}
    assert covered == expected


def test_lists_show_only_the_own_workspace(api, globex_objects, mastodon_channel):
    for path in ("channels", "posts", "media", "webhooks"):
        response = api.get(f"{API}/{path}")
        assert response.status_code == 200
        ids = {item["id"] for item in response.json()["results"]}
        assert globex_objects.get(path.rstrip("s")) not in ids, path
    assert [c["id"] for c in api.get(f"{API}/channels").json()["results"]] == [mastodon_channel.pk]


def _snapshot():
    return (
        list(Channel.objects.values_list("pk", "name", "status", "schedule", "timezone")),
        list(Post.objects.values_list("pk", "status")),
        list(Delivery.objects.values_list("pk", "status", "due_at")),
        list(Media.objects.values_list("pk", "alt_text")),
        list(Webhook.objects.values_list("pk", flat=True)),
    )

"""Every API list answers in a number of queries that does not grow with the items listed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduler.compose import PartInput, create_post
from scheduler.models import Post, Webhook
from tests.conftest import make_mastodon_channel, upload_media

pytestmark = pytest.mark.django_db


def _add_posts(membership: Any, count: int, start: int) -> None:
    channel = make_mastodon_channel(membership.workspace, _fake_url(), remote_id=f"p{start}")
    for n in range(start, start + count):
        media = [upload_media(membership, alt_text=f"picture {n}")]
        create_post(
            membership,
            channels=[channel],
            parts=[PartInput(f"post {n}", media=media), PartInput(f"reply {n}")],
            at=None,
            draft=True,
        )


def _add_channels(membership: Any, count: int, start: int) -> None:
    for n in range(start, start + count):
        make_mastodon_channel(membership.workspace, _fake_url(), remote_id=f"c{n}")


def _add_media(membership: Any, count: int, start: int) -> None:
    for n in range(count):
        upload_media(membership, alt_text=f"media {start + n}")


def _add_webhooks(membership: Any, count: int, start: int) -> None:
    for n in range(start, start + count):
        Webhook.objects.create(
            workspace=membership.workspace,
            url=f"https://hooks.example/{n}",
            events=["delivery.published"],
        )


def _add_notifications(membership: Any, count: int, start: int) -> None:
    from accounts.models import Notification, NotificationKind

    for n in range(start, start + count):
        Notification.objects.create(
            user=membership.user,
            workspace=membership.workspace,
            kind=NotificationKind.values[0],
            text=f"notification {n}",
        )


def _add_comments(membership: Any, count: int, start: int) -> None:
    from scheduler.comments import add_comment

    post = _parent_post(membership)
    for n in range(start, start + count):
        add_comment(membership, post, text=f"comment {n} for @{membership.user.email}")


def _add_webhook_deliveries(membership: Any, count: int, start: int) -> None:
    from scheduler.models import WebhookDelivery

    webhook = _parent_webhook(membership)
    for n in range(start, start + count):
        WebhookDelivery.objects.create(
            webhook=webhook, event="delivery.published", event_id=uuid.uuid4(), payload={"n": n}
        )


def _parent_post(membership: Any) -> Any:
    post = Post.objects.filter(workspace=membership.workspace, tags=["parent"]).first()
    if post is None:
        channel = make_mastodon_channel(membership.workspace, _fake_url(), remote_id="parent")
        post = create_post(
            membership,
            channels=[channel],
            parts=[PartInput("commented on")],
            at=None,
            draft=True,
            tags=["parent"],
        )
    return post


def _parent_webhook(membership: Any) -> Webhook:
    webhook, _ = Webhook.objects.get_or_create(
        workspace=membership.workspace,
        url="https://hooks.example/parent",
        defaults={"events": ["delivery.published"]},
    )
    return webhook


class _fake_url:  # make_mastodon_channel only needs the fake's URL
    url = "https://social.example"


def _fixed(url: str) -> Callable[[Any], str]:
    return lambda membership: url


# name -> (its URL, given the membership; a function adding `count` items from number `start`)
LISTS: dict[str, tuple[Callable[[Any], str], Callable[[Any, int, int], None]]] = {
    "posts": (_fixed("/api/v1/posts?limit=200"), _add_posts),
    "activity": (_fixed("/api/v1/activity?limit=200"), _add_posts),
    "channels": (_fixed("/api/v1/channels?limit=200"), _add_channels),
    "media": (_fixed("/api/v1/media?limit=200"), _add_media),
    "webhooks": (_fixed("/api/v1/webhooks?limit=200"), _add_webhooks),
    "notifications": (_fixed("/api/v1/notifications?limit=200"), _add_notifications),
    "comments": (lambda m: f"/api/v1/posts/{_parent_post(m).pk}/comments", _add_comments),
    "webhook deliveries": (
        lambda m: f"/api/v1/webhooks/{_parent_webhook(m).pk}/deliveries?limit=200",
        _add_webhook_deliveries,
    ),
}


def _count_queries(api: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.mark.parametrize("name", LISTS)
def test_list_queries_do_not_grow_with_the_items(name, api, membership, django_assert_num_queries):
    url_of, add = LISTS[name]
    add(membership, 1, 0)
    url = url_of(membership)
    api.get(url)  # once-per-token work (last use) is not part of the list
    with_one = _count_queries(api, url)
    add(membership, 4, 1)

    with django_assert_num_queries(with_one):
        response = api.get(url)
    body = response.json()
    assert len(body["results"] if isinstance(body, dict) else body) >= 5

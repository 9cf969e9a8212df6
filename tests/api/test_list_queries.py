"""Every API list answers in a number of queries that does not grow with the items listed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduler.compose import PartInput, create_post
from scheduler.models import Webhook
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


class _fake_url:  # make_mastodon_channel only needs the fake's URL
    url = "https://social.example"


LISTS: dict[str, Callable[[Any, int, int], None]] = {
    "/api/v1/posts?limit=200": _add_posts,
    "/api/v1/activity?limit=200": _add_posts,
    "/api/v1/channels?limit=200": _add_channels,
    "/api/v1/media?limit=200": _add_media,
    "/api/v1/webhooks?limit=200": _add_webhooks,
    "/api/v1/notifications?limit=200": _add_notifications,
}


def _count_queries(api: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.mark.parametrize("url", LISTS)
def test_list_queries_do_not_grow_with_the_items(url, api, membership, django_assert_num_queries):
    add = LISTS[url]
    add(membership, 1, 0)
    api.get(url)  # once-per-token work (last use) is not part of the list
    with_one = _count_queries(api, url)
    add(membership, 4, 1)

    with django_assert_num_queries(with_one):
        response = api.get(url)
    assert len(response.json()["results"]) >= 5

"""Every list page answers in a number of queries that does not grow with the items it shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Invitation, Membership, Notification, NotificationKind, Role
from accounts.tokens import create_token
from scheduler import activity, queue
from scheduler.compose import QUEUE_LAST, PartInput, create_post
from scheduler.models import ActivityVerb, Channel, Post
from tests.conftest import add_member

pytestmark = pytest.mark.django_db

# A Tuesday; the calendar is asked for its week.
FUTURE = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)


@dataclass
class Scene:
    membership: Membership
    contributor: Membership
    channel: Channel


@pytest.fixture
def scene(membership, mastodon_channel) -> Scene:
    mastodon_channel.schedule = {day: ["09:00", "17:00"] for day in queue.WEEKDAYS}
    mastodon_channel.save()
    contributor = add_member(membership.workspace, "carol@example.com", Role.CONTRIBUTOR)
    return Scene(membership, contributor, mastodon_channel)


# Each adds `count` items behind its page, numbered from `start`, and returns what the page
# must then show of them.
def _add_posts(scene: Scene, count: int, start: int) -> list[str]:
    for n in range(start, start + count):
        create_post(
            scene.membership,
            channels=[scene.channel],
            parts=[PartInput(f"Hello from post {n}."), PartInput(f"reply {n}")],
            at=FUTURE + timedelta(days=n % 5),  # a month cell shows only its first few
            tags=[f"tag{n}"],
        )
    return [f"Hello from post {n}." for n in range(start, start + count)]


def _submit(scene: Scene, count: int, start: int) -> list[Post]:
    """Posts of the contributor, awaiting approval."""
    return [
        create_post(
            scene.contributor,
            channels=[scene.channel],
            parts=[PartInput(f"Please approve {n}.")],
            at=FUTURE + timedelta(minutes=n),
        )
        for n in range(start, start + count)
    ]


def _add_pending_posts(scene: Scene, count: int, start: int) -> list[str]:
    _submit(scene, count, start)
    return [f"Please approve {n}." for n in range(start, start + count)]


def _add_activity(scene: Scene, count: int, start: int) -> list[str]:
    posts = _submit(scene, count, start)  # each submission is logged
    for n in range(start, start + count):
        member = add_member(scene.membership.workspace, f"member{n}@example.com", Role.EDITOR)
        activity.record(
            ActivityVerb.ROLE_CHANGED,
            workspace_id=scene.membership.workspace_id,
            actor=scene.membership.user,
            member=member.user,
            changes={"role": f"role {n}"},
        )
    return [f">post {post.pk}<" for post in posts] + [
        f"as role {n}" for n in range(start, start + count)
    ]


def _add_notifications(scene: Scene, count: int, start: int) -> list[str]:
    Notification.objects.bulk_create(
        Notification(
            user=scene.membership.user,
            workspace=scene.membership.workspace,
            kind=NotificationKind.MENTIONED,
            text=f"notification {n}",
            link=f"/posts/{n}/",
        )
        for n in range(start, start + count)
    )
    return [f"notification {n}" for n in range(start, start + count)]


def _add_unread(scene: Scene, count: int, start: int) -> list[str]:
    _add_notifications(scene, count, start)
    return [f'<span class="badge bell-count">{start + count}</span>']


def _add_channels(scene: Scene, count: int, start: int) -> list[str]:
    for n in range(start, start + count):
        channel = Channel(
            workspace=scene.membership.workspace,
            network="mastodon",
            server_url=scene.channel.server_url,
            remote_id=f"c{n}",
            handle=f"@channel{n}@social.example",
            display_name=f"Channel {n}",
            schedule=scene.channel.schedule,
        )
        channel.credentials = {"access_token": "token"}
        channel.save()
    return [f"Channel {n}" for n in range(start, start + count)]


def _add_queued_posts(scene: Scene, count: int, start: int) -> list[str]:
    for n in range(start, start + count):
        create_post(
            scene.membership,
            channels=[scene.channel],
            parts=[PartInput(f"Queued post {n}.")],
            at=None,
            queue=QUEUE_LAST,
        )
    return [f"Queued post {n}." for n in range(start, start + count)]


def _add_members(scene: Scene, count: int, start: int) -> list[str]:
    for n in range(start, start + count):
        add_member(scene.membership.workspace, f"member{n}@example.com", Role.EDITOR)
        Invitation.objects.create(
            workspace=scene.membership.workspace,
            email=f"invited{n}@example.com",
            invited_by=scene.membership.user,
            key=f"key{n}",
        )
    return [f"member{n}@example.com" for n in range(start, start + count)] + [
        f"invited{n}@example.com" for n in range(start, start + count)
    ]


def _add_tokens(scene: Scene, count: int, start: int) -> list[str]:
    for n in range(start, start + count):
        create_token(scene.membership, name=f"token {n}", scope="read")
    return [f"token {n}" for n in range(start, start + count)]


PAGES: dict[str, Callable[[Scene, int, int], list[str]]] = {
    "/": _add_posts,
    "/?status=scheduled&q=post&sort=due": _add_posts,
    "/review/": _add_pending_posts,
    "/activity/": _add_activity,
    "/notifications/": _add_notifications,
    "/notifications/bell/": _add_unread,
    "/channels/": _add_channels,
    "/calendar/?date=2031-03-04": _add_posts,
    "/calendar/?date=2031-03-04&view=month": _add_posts,
    "/queue/": _add_queued_posts,  # leads to the first channel's queue
    "/queue/{channel}/": _add_queued_posts,
    "/schedule/{channel}/": _add_queued_posts,
    "/settings/members/": _add_members,
    "/settings/tokens/": _add_tokens,
}


def _get(client: Any, url: str) -> Any:
    response = client.get(url, follow=True)
    assert response.status_code == 200, response.content
    return response


@pytest.mark.parametrize("page", PAGES)
def test_page_queries_do_not_grow_with_the_items(
    page, scene, alice_client, django_assert_num_queries
):
    add, url = PAGES[page], page.format(channel=scene.channel.pk)
    add(scene, 1, 0)
    _get(alice_client, url)  # once-per-session work (the session's workspace) is not the page's
    with CaptureQueriesContext(connection) as queries:
        _get(alice_client, url)
    with_one = len(queries)
    shown = add(scene, 4, 1)

    with django_assert_num_queries(with_one):
        html = _get(alice_client, url).content.decode()
    for text in shown:
        assert text in html

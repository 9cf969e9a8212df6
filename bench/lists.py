"""Benchmark: server time and queries of every list, in the API and on the web pages.

Fills `<database>_bench` like bench/post_list.py (3 channels, N posts, half of them two-part
threads on two channels, each first part with an image) and adds ITEMS of everything else a list
shows: channels, media, webhooks, notifications, activity entries, members, API tokens, posts
awaiting approval and posts queued on one channel (the 3 first channels keep their posting
schedules; the added ones have none, so the calendar is not filled with their open slots).
The N posts are written last, so the API's newest-first post list shows the same posts as before.

Then it requests, through Django's full stack, each API list with a bearer token at limit=200
and limit=50, and each list page with a logged-in session, and prints median/p95 server time,
the query count and the answer's size. It repeats with a tenth of the posts and items to show
the counts do not grow with them.

    python bench/lists.py [--posts 500] [--items 200] [--runs 20] [--only review,queue]

--only measures just the lists whose label contains one of the given words.
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta

from common import setup_django

LISTS = ["posts", "activity", "channels", "media", "webhooks", "notifications"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--only", default="", help="comma-separated words: measure the lists labelled with one"
    )
    args = parser.parse_args()
    words = [word.strip() for word in args.only.split(",") if word.strip()]

    def wanted(label: str) -> bool:
        return not words or any(word in label for word in words)

    setup_django()
    from post_list import measure

    print(f"load average {' '.join(f'{n:.2f}' for n in os.getloadavg())} (2 shared cores)")
    for scale in (10, 1):
        posts, items = args.posts // scale, args.items // scale
        client, channels, nested = fill(posts, items)
        api = api_client(client, with_media=True)
        print(
            f"-- {posts} posts on 3 channels, and {items} of each other thing listed "
            f"(posts awaiting approval and posts queued on {channels[1].handle} among them)"
        )
        print("API, bearer token:")
        for name in LISTS:
            for limit in (200, 50):
                if wanted(f"{name} ({limit})"):
                    url = f"/api/v1/{name}?limit={limit}"
                    measure(api, "get", url, f"{name} ({limit})", args.runs)
        if wanted("queue"):
            measure(api, "get", f"/api/v1/channels/{channels[1].pk}/queue", "queue", args.runs)
        for label, path in nested:
            if wanted(label):
                measure(api, "get", path, label, args.runs)
        print("Pages, logged in (Europe/Berlin reader):")
        for label, path in pages(channels, posts):
            if wanted(label):
                measure(client, "get", path, label, args.runs, follow=path == "/queue/")


def pages(channels, posts: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(label, path) of every list page; the calendar shows the week in the middle of the posts."""
    from post_list import POSTS_START

    middle = (POSTS_START + timedelta(hours=posts // 2)).date()
    queued = channels[1].pk
    return [
        ("post list", "/"),
        ("filtered list", "/?status=scheduled&q=number+1"),
        ("review", "/review/"),
        ("activity", "/activity/"),
        ("notifications", "/notifications/"),
        ("bell", "/notifications/bell/"),
        ("channels", "/channels/"),
        ("calendar week", f"/calendar/?date={middle}"),
        ("calendar month", f"/calendar/?view=month&date={middle}"),
        ("queue/ (302)", "/queue/"),  # leads to the first channel by handle: channels[1]
        ("channel queue", f"/queue/{queued}/"),
        ("schedule", f"/schedule/{queued}/"),
        ("members", "/settings/members/"),
        ("tokens", "/settings/tokens/"),
    ]


def fill(posts: int, items: int):  # type: ignore[no-untyped-def]
    """The bench workspace with `posts` posts and `items` of each other list. Returns the owner's
    logged-in client, the 3 first channels and the (label, path) of the API's nested lists: the
    newest post's comments and the first webhook's deliveries."""
    from django.test import Client
    from post_list import add_posts, fill_workspace

    user, workspace, channels = fill_workspace()
    members = add_members(workspace, items)
    contributor = next(m.user for m in members if m.role == "contributor")
    pending = add_posts(workspace, contributor, channels, items, awaiting_approval=True)
    add_queue(workspace, user, channels[1], items)
    rows = add_posts(workspace, user, channels, posts)  # last: the newest
    added = add_channels(workspace, items)
    add_activity(workspace, user, [*pending, *rows], [*channels, *added], members, items)
    add_media(workspace, user, items)
    webhook = add_webhooks(workspace, user, items)
    add_webhook_deliveries(webhook, items)
    add_comments(workspace, rows[-1], [m.user for m in members], items)
    add_notifications(workspace, user, rows, items)
    add_tokens(workspace, user, items)
    client = Client()
    client.force_login(user)
    nested = [
        ("comments", f"/api/v1/posts/{rows[-1].pk}/comments"),
        ("webhook deliveries (200)", f"/api/v1/webhooks/{webhook.pk}/deliveries?limit=200"),
    ]
    return client, channels, nested


def add_members(workspace, count: int):  # type: ignore[no-untyped-def]
    """`count` members in every role but owner, and a tenth as many pending invitations."""
    import secrets

    from django.contrib.auth.hashers import make_password

    from accounts.models import Invitation, Membership, Role, User

    password = make_password("bench-password")
    users = User.objects.bulk_create(
        User(
            email=f"member{n}@example.com",
            name=f"Member {n}",
            timezone="Europe/Berlin",
            password=password,
        )
        for n in range(count)
    )
    roles = [Role.CONTRIBUTOR, Role.EDITOR, Role.VIEWER, Role.ADMIN]
    Invitation.objects.bulk_create(
        Invitation(
            workspace=workspace,
            email=f"invited{n}@example.com",
            role=roles[n % len(roles)],
            key=secrets.token_urlsafe(32),
        )
        for n in range(count // 10)
    )
    return Membership.objects.bulk_create(
        Membership(user=user, workspace=workspace, role=roles[n % len(roles)])
        for n, user in enumerate(users)
    )


def add_queue(workspace, author, channel, count: int) -> None:  # type: ignore[no-untyped-def]
    """`count` posts queued on `channel`, each on its next slot."""
    from django.utils import timezone

    from scheduler import queue
    from scheduler.models import Delivery, DeliveryStatus, Post, PostPart, PostStatus

    rows = Post.objects.bulk_create(
        Post(workspace=workspace, author=author, status=PostStatus.SCHEDULED) for _ in range(count)
    )
    PostPart.objects.bulk_create(
        PostPart(post=post, position=0, text=f"Queued {n}: " + "words " * 30)
        for n, post in enumerate(rows)
    )
    slots = queue.slot_times(channel, after=timezone.now())
    Delivery.objects.bulk_create(
        Delivery(
            workspace=workspace,
            post=post,
            channel=channel,
            status=DeliveryStatus.SCHEDULED,
            pinned=False,
            due_at=slot,
            next_attempt_at=slot,
        )
        for post, slot in zip(rows, slots, strict=False)
    )


def add_channels(workspace, count: int):  # type: ignore[no-untyped-def]
    """`count` more connected channels, with credentials and no posting schedule."""
    from django.utils import timezone

    from scheduler.models import Channel
    from scheduler.networks import network_for

    channels = []
    for n in range(count):
        channel = Channel(
            workspace=workspace,
            network=("mastodon", "bluesky", "threads")[n % 3],
            server_url="https://example.social",
            remote_id=f"page{n}",
            handle=f"@page{n}",
            display_name=f"Page {n}",
            timezone="Europe/Berlin",
            limits_fetched_at=timezone.now(),
        )
        channel.limits = network_for(channel).default_limits().as_dict()
        channel.credentials = {"access_token": f"token-{n}"}
        channels.append(channel)
    return Channel.objects.bulk_create(channels)


def add_activity(workspace, actor, posts, channels, members, count: int) -> None:  # type: ignore[no-untyped-def]
    """`count` activity entries: about posts, posts on a channel, channels and members."""
    from scheduler import activity
    from scheduler.models import Activity, ActivityVerb

    entries = []
    for n in range(count):
        post, channel, member = posts[n % len(posts)], channels[n % len(channels)], members[n]
        subject = [
            {"verb": ActivityVerb.SUBMITTED, "post": post},
            {"verb": ActivityVerb.PUBLISHED, "post": post, "channel": channel, "actor": None},
            {"verb": ActivityVerb.CONNECTED, "channel": channel},
            {
                "verb": ActivityVerb.ROLE_CHANGED,
                "member": member.user,
                "changes": {"role": "editor"},
            },
        ][n % 4]
        entries.append(activity.entry(workspace_id=workspace.pk, **{"actor": actor, **subject}))
    Activity.objects.bulk_create(entries)


def add_media(workspace, user, count: int) -> None:  # type: ignore[no-untyped-def]
    """`count` images with alt text, sharing one stored file."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from scheduler.models import Media

    name = default_storage.save("uploads/bench/list.png", ContentFile(b"\x89PNG bench"))
    Media.objects.bulk_create(
        Media(
            workspace=workspace,
            uploaded_by=user,
            file=name,
            kind="image",
            mime_type="image/png",
            size=67,
            width=1200,
            height=800,
            alt_text=f"Picture {n}",
            checksum=f"{n:064x}",
        )
        for n in range(count)
    )


def add_webhooks(workspace, user, count: int):  # type: ignore[no-untyped-def]
    """`count` webhooks; returns the first."""
    import secrets

    from scheduler.models import Webhook

    return Webhook.objects.bulk_create(
        Webhook(
            workspace=workspace,
            created_by=user,
            url=f"https://hooks.example/{n}",
            events=["delivery.published", "delivery.failed"],
            secrets={"secret": secrets.token_hex(32)},
        )
        for n in range(count)
    )[0]


def add_webhook_deliveries(webhook, count: int) -> None:  # type: ignore[no-untyped-def]
    """`count` deliveries in the webhook's log, as sent."""
    import uuid

    from django.utils import timezone

    from scheduler.models import WebhookDelivery, WebhookDeliveryStatus

    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            webhook=webhook,
            event="delivery.published",
            event_id=uuid.uuid4(),
            payload={"delivery_id": n, "status": "published"},
            status=WebhookDeliveryStatus.SUCCEEDED,
            attempts=1,
            response_status=200,
            delivered_at=now - timedelta(minutes=n),
            created_at=now - timedelta(minutes=n),
        )
        for n in range(count)
    )


def add_comments(workspace, post, members, count: int) -> None:  # type: ignore[no-untyped-def]
    """`count` comments on the post, each by and mentioning a member."""
    from scheduler.models import Comment

    comments = Comment.objects.bulk_create(
        Comment(
            workspace=workspace,
            post=post,
            author=members[n % len(members)],
            text=f"Comment {n} for @{members[(n + 1) % len(members)].email}",
        )
        for n in range(count)
    )
    Comment.mentions.through.objects.bulk_create(
        Comment.mentions.through(comment_id=c.pk, user_id=members[(n + 1) % len(members)].pk)
        for n, c in enumerate(comments)
    )


def add_notifications(workspace, user, posts, count: int) -> None:  # type: ignore[no-untyped-def]
    """`count` notifications of the owner, every other one unread."""
    from django.utils import timezone

    from accounts.models import Notification, NotificationKind

    kinds = NotificationKind.values
    Notification.objects.bulk_create(
        Notification(
            user=user,
            workspace=workspace,
            kind=kinds[n % len(kinds)],
            text=f"Notification {n}: something happened to a post",
            link=f"/posts/{posts[n % len(posts)].pk}/",
            read_at=timezone.now() if n % 2 else None,
        )
        for n in range(count)
    )


def add_tokens(workspace, user, count: int) -> None:  # type: ignore[no-untyped-def]
    from accounts.models import ApiToken
    from accounts.tokens import TOKEN_PREFIX, hash_token

    raw = [f"{TOKEN_PREFIX}bench{n:038d}" for n in range(count)]
    ApiToken.objects.bulk_create(
        ApiToken(
            user=user,
            workspace=workspace,
            name=f"Token {n}",
            scope=("read", "write")[n % 2],
            token_hash=hash_token(token),
            prefix=token[: len(TOKEN_PREFIX) + 6],
        )
        for n, token in enumerate(raw)
    )


def api_client(client, *, with_media: bool):  # type: ignore[no-untyped-def]
    """A bearer-token client of the bench user; gives each first part an image first."""
    from django.core.files.base import ContentFile
    from rest_framework.test import APIClient

    from accounts.models import Membership
    from accounts.tokens import create_token
    from scheduler.models import Media, PartMedia, PostPart

    membership = Membership.objects.select_related("workspace").get(role="owner")
    if with_media:
        media = Media(workspace=membership.workspace, kind="image", mime_type="image/png", size=67)
        media.file.save("bench.png", ContentFile(b"\x89PNG bench"), save=False)
        media.checksum = "0" * 64
        media.save()
        PartMedia.objects.bulk_create(
            PartMedia(part=part, media=media) for part in PostPart.objects.filter(position=0)
        )
    _, raw = create_token(membership, name="bench", scope="read")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


if __name__ == "__main__":
    main()

"""Benchmark: server time and queries of the post list, a post page and the composer's check.

Fills `herald_bench` with one workspace of 3 channels (Mastodon, Bluesky, Threads) and N posts
(500 by default, half of them two-part threads on two channels), then requests through Django's
full stack (middleware, view, template):
- the post list (first page, and filtered by status and text),
- one post's page,
- the composer's counter/preview request (POST /compose/check/) for a two-part thread on all
  three channels: what the page sends, debounced, while someone types.
It repeats with a tenth of the posts to show the query counts do not grow with them.

    python bench/post_list.py [--posts 500] [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from common import percentile, reset_tables, setup_django

POSTS_START = datetime(2030, 3, 1, 6, tzinfo=UTC)
# Posts awaiting approval (bench/lists.py): after the scheduled ones, out of their calendar.
PENDING_START = datetime(2030, 6, 3, 7, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    setup_django()
    for posts in (args.posts // 10, args.posts):
        client, channels, post_id = fill(posts)
        print(f"-- {posts} posts on 3 channels (Europe/Berlin reader)")
        measure(client, "get", "/", "post list", args.runs)
        measure(client, "get", "/?status=scheduled&q=number+1", "filtered list", args.runs)
        measure(client, "get", f"/posts/{post_id}/", "post page", args.runs)
        body = {
            "channels": [c.pk for c in channels],
            "part-0-text": "Launch day! Read https://example.com/news/launch for the details. "
            "Thanks @alice@example.social and #herald 🎉" * 2,
            "part-1-text": "Second part of the thread. " * 8,
            "when": "queue",
        }
        measure(client, "post", "/compose/check/", "composer check", args.runs, body)


def fill(posts: int):  # type: ignore[no-untyped-def]
    from django.test import Client

    user, workspace, channels = fill_workspace()
    rows = add_posts(workspace, user, channels, posts)
    client = Client()
    client.force_login(user)
    return client, channels, rows[0].pk


def fill_workspace():  # type: ignore[no-untyped-def]
    """Empty the bench tables; one user owning a workspace with 3 channels. Returns all three."""
    from django.utils import timezone

    from accounts.workspaces import create_user_with_workspace
    from scheduler.models import Channel
    from scheduler.networks import network_for

    reset_tables()
    user, workspace = create_user_with_workspace(
        "list@example.com",
        password="bench-password",
        workspace_name="Bench",
        timezone="Europe/Berlin",
    )
    channels = [
        Channel(
            workspace=workspace,
            network=network,
            server_url="https://example.social",
            remote_id=str(n),
            handle=f"@{network}{n}",
            timezone="Europe/Berlin",
            schedule={d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        )
        for n, network in enumerate(("mastodon", "bluesky", "threads"))
    ]
    for channel in channels:  # known limits, as after the first check: no server is asked
        channel.limits = network_for(channel).default_limits().as_dict()
        channel.limits_fetched_at = timezone.now()
    Channel.objects.bulk_create(channels)
    return user, workspace, channels


def add_posts(  # type: ignore[no-untyped-def]
    workspace, user, channels, posts: int, *, awaiting_approval: bool = False
):
    """`posts` posts an hour apart, half of them two-part threads on two channels: scheduled
    from 1 March 2030, or (`awaiting_approval`) held for approval from 3 June 2030. Returns them."""
    from scheduler.models import Delivery, DeliveryStatus, Post, PostPart, PostStatus

    status, start, text = (
        (PostStatus.PENDING_APPROVAL, PENDING_START, "Please approve")
        if awaiting_approval
        else (PostStatus.SCHEDULED, POSTS_START, "Post number")
    )
    rows = Post.objects.bulk_create(
        Post(workspace=workspace, author=user, status=status, tags=["bench"]) for _ in range(posts)
    )
    PostPart.objects.bulk_create(
        PostPart(post=post, position=p, text=f"{text} {n}, part {p}: " + "words " * 30)
        for n, post in enumerate(rows)
        for p in range(1 + n % 2)
    )
    Delivery.objects.bulk_create(
        Delivery(
            workspace=workspace,
            post=post,
            channel=channels[(n + k) % 3],
            status=DeliveryStatus.HELD if awaiting_approval else DeliveryStatus.SCHEDULED,
            due_at=start + timedelta(hours=n),
            next_attempt_at=None if awaiting_approval else start + timedelta(hours=n),
        )
        for n, post in enumerate(rows)
        for k in range(1 + n % 2)
    )
    return rows


def measure(
    client, method: str, path: str, label: str, runs: int, body=None, *, follow=False
) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def request():  # type: ignore[no-untyped-def]
        if method == "post":
            return client.post(path, body, follow=follow)
        return client.get(path, follow=follow)

    request()  # warm up caches and the template loader
    times = []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = request()
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    print(
        f"{label:>15}: median {statistics.median(times):5.1f} ms, p95 {percentile(times, 95):5.1f} ms, "
        f"{len(queries)} queries, {len(response.content) // 1024} KiB"
    )


if __name__ == "__main__":
    main()

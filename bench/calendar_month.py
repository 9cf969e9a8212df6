"""Benchmark: server time and queries of the calendar pages and the iCalendar feed.

Fills `herald_bench` with one workspace of 10 channels (three slots a day each) and POSTS
scheduled posts spread over one month (500 by default), then renders the month view, the busiest
week and the feed through Django's full request stack (middleware, view, template) and prints
the time per request and the number of queries. It repeats with a tenth of the posts to show the
query count does not grow with them.

    python bench/calendar_month.py [--posts 500] [--runs 30]

(Not named calendar.py: a script's folder comes first on sys.path, and that would shadow the
standard library's calendar module.)
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

from common import percentile, reset_tables, setup_django

MONTH = date(2030, 3, 1)  # Europe/Berlin springs forward on 31 March 2030: a DST month


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    setup_django()
    import time_machine
    from django.core.cache import cache

    # Mid-February, so every day of the month is ahead and its open slots are computed.
    with time_machine.travel(datetime(MONTH.year, 2, 15, tzinfo=UTC), tick=True):
        for posts in (args.posts // 10, args.posts):
            client, feed_path = fill(posts)
            print(f"-- {posts} posts in {MONTH:%B %Y} on 10 channels (Europe/Berlin reader)")
            measure(client, f"/calendar/?view=month&date={MONTH}", "month view", args.runs)
            week = MONTH + timedelta(days=14)
            measure(client, f"/calendar/?view=week&date={week}", "week view", args.runs)
            measure(client, feed_path, "feed, built", args.runs, before=cache.clear)
            measure(client, feed_path, "feed, cached", args.runs)


def fill(posts: int):  # type: ignore[no-untyped-def]
    from django.test import Client

    from accounts.models import Membership
    from accounts.workspaces import create_user_with_workspace
    from scheduler import feeds
    from scheduler.models import Channel, Delivery, DeliveryStatus, Post, PostPart, PostStatus

    reset_tables()
    user, workspace = create_user_with_workspace(
        "cal@example.com",
        password="bench-password",
        workspace_name="Bench",
        timezone="Europe/Berlin",
    )
    channels = Channel.objects.bulk_create(
        Channel(
            workspace=workspace,
            network=("mastodon", "bluesky", "threads")[n % 3],
            server_url="https://example.social",
            remote_id=str(n),
            handle=f"@channel{n}",
            timezone="Europe/Berlin",
            schedule={
                d: ["09:00", "13:00", "17:00"]
                for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            },
        )
        for n in range(10)
    )
    start = datetime(MONTH.year, MONTH.month, 1, 6, tzinfo=UTC)
    step = timedelta(days=30) / posts
    rows = Post.objects.bulk_create(
        Post(workspace=workspace, author=user, status=PostStatus.SCHEDULED, tags=["bench"])
        for _ in range(posts)
    )
    PostPart.objects.bulk_create(
        PostPart(post=post, position=0, text=f"Post number {n}: " + "words " * 30)
        for n, post in enumerate(rows)
    )
    Delivery.objects.bulk_create(
        Delivery(
            workspace=workspace,
            post=post,
            channel=channels[n % 10],
            status=DeliveryStatus.SCHEDULED,
            due_at=start + n * step,
            next_attempt_at=start + n * step,
        )
        for n, post in enumerate(rows)
    )
    client = Client()
    client.force_login(user)
    url = feeds.issue_feed(Membership.objects.get(user=user))
    return client, urlsplit(url).path


def measure(client, path: str, label: str, runs: int, before=None) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(path)  # warm up caches and the template loader
    times, cpu = [], []
    for _ in range(runs):
        if before:
            before()
        with CaptureQueriesContext(connection) as queries:
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, response.status_code
    # On a shared machine the wall time includes waiting for a CPU; the CPU time (this process
    # only, so without PostgreSQL's share) and the minimum show the cost without that wait.
    print(
        f"{label:>15}: wall median {statistics.median(times):5.1f} ms, min {min(times):5.1f} ms, "
        f"p95 {percentile(times, 95):5.1f} ms; CPU median {statistics.median(cpu):5.1f} ms; "
        f"{len(queries)} queries, {len(response.content) // 1024} KiB"
    )


if __name__ == "__main__":
    main()

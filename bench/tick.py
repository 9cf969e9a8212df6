"""Benchmark: the cost of an idle dispatch tick on a large table.

Fills `herald_bench` with FUTURE scheduled deliveries and PUBLISHED history (1,000,000 each by
default), then times `run_tick()` with nothing due and prints the distribution and the queries
one tick runs.

    python bench/tick.py [--future 1000000] [--published 1000000] [--ticks 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import percentile, reset_tables, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--future", type=int, default=1_000_000)
    parser.add_argument("--published", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=200)
    args = parser.parse_args()

    setup_django()
    started = time.perf_counter()
    fill(args.future, args.published)
    print(
        f"filled {args.future:,} future + {args.published:,} published deliveries in "
        f"{time.perf_counter() - started:.0f} s"
    )
    measure(args.ticks)


def fill(future: int, published: int) -> None:
    """Insert the rows with set-based SQL (the ORM would take far longer)."""
    from django.db import connection

    from accounts.workspaces import create_user_with_workspace
    from scheduler.models import Channel, Post, PostStatus

    reset_tables()
    _, workspace = create_user_with_workspace(
        "tick@example.com", password=None, workspace_name="Tick"
    )
    channels = 1000
    total = future + published
    posts = -(-total // channels)
    Channel.objects.bulk_create(
        Channel(
            workspace=workspace,
            network="mastodon",
            server_url="https://example.social",
            remote_id=str(n),
            handle=f"@c{n}",
        )
        for n in range(channels)
    )
    Post.objects.bulk_create(
        (Post(workspace=workspace, status=PostStatus.SCHEDULED) for _ in range(posts)),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO scheduler_delivery (workspace_id, post_id, channel_id, status, due_at,
                   next_attempt_at, pinned, attempts, failures, last_error_code, last_error, part_states,
                   published_at, created_at, updated_at)
               SELECT %(ws)s, p.id, c.id,
                   CASE WHEN n <= %(future)s THEN 'scheduled' ELSE 'published' END,
                   now() + (CASE WHEN n <= %(future)s THEN 1 ELSE -1 END) * make_interval(secs => 60 + n),
                   CASE WHEN n <= %(future)s THEN now() + make_interval(secs => 60 + n) END,
                   true, 1, 0, '', '', '[]',
                   CASE WHEN n <= %(future)s THEN NULL ELSE now() - make_interval(secs => n) END,
                   now(), now()
               FROM (SELECT id, row_number() OVER (ORDER BY id) AS pn FROM scheduler_post) p
               CROSS JOIN LATERAL (SELECT id, row_number() OVER (ORDER BY id) AS cn
                                   FROM scheduler_channel) c
               CROSS JOIN LATERAL (SELECT (p.pn - 1) * %(channels)s + c.cn AS n) numbered
               WHERE n <= %(total)s""",
            {"ws": workspace.pk, "future": future, "channels": channels, "total": total},
        )
        cursor.execute("ANALYZE scheduler_delivery")


def measure(ticks: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from scheduler.dispatch import run_tick
    from scheduler.models import Delivery

    claimed: list[object] = []
    run_tick(enqueue=claimed.extend)  # warm-up: connection, query plans
    timings = []
    for _ in range(ticks):
        started = time.perf_counter()
        run_tick(enqueue=claimed.extend)
        timings.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        run_tick(enqueue=claimed.extend)
    rows = Delivery.objects.count()
    print(f"deliveries in table   {rows:,}")
    print(f"claimed while idle    {len(claimed)}")
    print(
        f"idle tick ms p50/p95/p99/max  {statistics.median(timings):.2f} / {percentile(timings, 95):.2f} / "
        f"{percentile(timings, 99):.2f} / {max(timings):.2f}"
    )
    print(f"queries per tick      {len(queries.captured_queries)}")
    for query in queries.captured_queries:
        print(f"  {query['time']}s  {query['sql'][:150]}")


if __name__ == "__main__":
    main()

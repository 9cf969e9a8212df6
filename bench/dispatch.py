"""Benchmark: the real engine (Celery beat + workers, PostgreSQL, Redis) against the fake Mastodon.

Two scenarios, both printed as figures:
- burst: DELIVERIES due in the same second across CHANNELS channels;
- spread: SPREAD posts due at distinct seconds (punctuality at light load).

    python bench/dispatch.py [--deliveries 10000] [--channels 1000] [--spread 200] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import (
    CpuMeter,
    Processes,
    flush_broker,
    percentile,
    reset_tables,
    setup_django,
    wait_until,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=1_000)
    parser.add_argument(
        "--spread", type=int, default=200, help="posts at distinct seconds (0 to skip)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.05, help="seconds added to every fake reply"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--concurrency", type=int, default=24, help="threads (or processes) per worker"
    )
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork"])
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--profile", action="store_true", help="sample the workers with py-spy; print top frames"
    )
    args = parser.parse_args()

    setup_django(HERALD_DISPATCH_INTERVAL="1", HERALD_CLAIM_AHEAD="3", HERALD_CLAIM_BATCH="20000")
    fake = FakeProcess(args.latency)
    print(
        f"fake Mastodon at {fake.url} (own process) with {args.latency * 1000:.0f} ms added latency"
    )
    try:
        if args.deliveries:
            run("burst", fake, args, count=args.deliveries, channels=args.channels, spacing=0.0)
        if args.spread:
            run("spread", fake, args, count=args.spread, channels=min(args.spread, 20), spacing=1.0)
    finally:
        fake.stop()


class FakeProcess:
    """The fake Mastodon in its own process, as a real server would be: it must not share the
    benchmark's CPU time slice (GIL) with the code being measured."""

    def __init__(self, latency: float, *, faults: bool = False) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(
            target=_serve_fake, args=(child, latency, faults), daemon=True
        )
        self.process.start()
        self.url = self.conn.recv()

    def call(self, command: str):  # type: ignore[no-untyped-def]
        self.conn.send(command)
        return self.conn.recv()

    def stop(self) -> None:
        self.call("stop")
        self.process.join(5)


def _serve_fake(conn, latency: float, faults: bool) -> None:  # type: ignore[no-untyped-def]
    from tests.fakes.mastodon import FakeMastodon

    fake = FakeMastodon()
    if faults:
        fake._take_fault = _random_fault  # type: ignore[method-assign]
    fake.start()
    fake.latency = latency
    conn.send(fake.url)
    while True:
        command = conn.recv()
        with fake.lock:
            if command == "reset":
                fake.statuses.clear()
                fake.requests.clear()
                conn.send(None)
            elif command == "texts":
                conn.send([status["text"] for status in fake.statuses])
            elif command == "stop":
                conn.send(None)
                break
    fake.stop()


def _random_fault(method: str, path: str):  # type: ignore[no-untyped-def]
    """For chaos: 5 % of status posts are stored but their answer is lost (connection reset),
    5 % are answered 503 without being stored."""
    import random

    from tests.fakes.base import Fault

    if method != "POST" or path != "/api/v1/statuses":
        return None
    roll = random.random()
    if roll < 0.05:
        return Fault(method, path, reset_after_handling=True)
    if roll < 0.10:
        return Fault(method, path, status=503, body={"error": "Service Unavailable"})
    return None


def run(
    name: str, fake, args: argparse.Namespace, *, count: int, channels: int, spacing: float
) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from scheduler.models import Delivery, DeliveryStatus, EngineHeartbeat

    reset_tables()
    flush_broker()
    fake.call("reset")
    workspace, channel_rows = make_channels(fake, channels)
    processes = Processes(
        Path(tempfile.mkdtemp(prefix=f"herald-bench-{name}-")),
        workers=args.workers,
        concurrency=args.concurrency,
        pool=args.pool,
        profile=args.profile,
    )
    processes.start()
    try:
        if not wait_until(lambda: EngineHeartbeat.objects.exists(), timeout=60):
            raise SystemExit(f"no dispatch tick within 60 s; logs in {processes.log_dir}")
        first_due = timezone.now().replace(microsecond=0) + timedelta(seconds=8)
        make_deliveries(workspace, channel_rows, count, first_due=first_due, spacing=spacing)
        last_due = first_due + timedelta(seconds=spacing * (count - 1))
        wait_until(lambda: timezone.now() >= first_due - timedelta(seconds=4), timeout=10)
        meter = CpuMeter({fake.process.pid: "fake Mastodon"}).start()  # from the first claim on
        done = wait_until(
            lambda: Delivery.objects.filter(status=DeliveryStatus.PUBLISHED).count() >= count,
            timeout=(last_due - timezone.now()).total_seconds() + args.timeout,
            interval=0.5,
        )
        cpu = meter.stop()
        time.sleep(3)  # let any duplicate show up before counting
        report(
            name, fake, processes, count=count, channels=channels, first_due=first_due, done=done
        )
        print_cpu(cpu, count)
    finally:
        processes.stop()
    if args.profile:
        print_profile(processes.log_dir, count)


def print_cpu(cpu: dict[str, float], publishes: int) -> None:
    """CPU time of every process on the machine from the first claim to the last publish."""
    total = sum(cpu.values())
    print(f"CPU, whole machine    {total:.1f} s = {1000 * total / publishes:.2f} ms per publish")
    for role, seconds in cpu.items():
        print(f"  {role:<20}{seconds:7.1f} s  {1000 * seconds / publishes:6.2f} ms per publish")


def print_profile(log_dir: Path, publishes: int) -> None:
    """Where the workers' CPU went: samples holding the GIL per function, from py-spy."""
    from collections import Counter

    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for path in log_dir.glob("*.stacks"):
        for line in path.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            frames = [
                f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                for f in stack.split(";")[1:]
            ]
            if not frames:
                continue
            count = int(samples)
            total += count
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    print(
        f"\n== CPU samples of the workers (50 Hz): {total} busy samples, {total * 20 / max(publishes, 1):.2f} ms per publish =="
    )
    for label, counter in (("self", own), ("inclusive", inclusive)):
        print(f"-- top {label}")
        for frame, count in counter.most_common(25):
            print(f"{100 * count / max(total, 1):5.1f}%  {frame}")


def make_channels(fake, count: int):  # type: ignore[no-untyped-def]
    from accounts.workspaces import create_user_with_workspace
    from scheduler.models import Channel

    _, workspace = create_user_with_workspace(
        "bench@example.com", password=None, workspace_name="Bench"
    )
    rows = []
    for n in range(count):
        channel = Channel(
            workspace=workspace,
            network="mastodon",
            server_url=fake.url,
            remote_id=str(n),
            handle=f"@bench{n}@fake",
        )
        channel.credentials = {"access_token": "fake-token-alice"}
        rows.append(channel)
    return workspace, Channel.objects.bulk_create(rows)


def make_deliveries(workspace, channels, count: int, *, first_due, spacing: float) -> None:  # type: ignore[no-untyped-def]
    from django.db import transaction

    from scheduler.models import Delivery, DeliveryStatus, Post, PostPart, PostStatus

    with transaction.atomic():
        posts = Post.objects.bulk_create(
            Post(workspace=workspace, status=PostStatus.SCHEDULED) for _ in range(count)
        )
        PostPart.objects.bulk_create(
            PostPart(post=post, position=0, text=f"bench post {n}") for n, post in enumerate(posts)
        )
        deliveries = []
        for n, post in enumerate(posts):
            due = first_due + timedelta(seconds=spacing * n)
            deliveries.append(
                Delivery(
                    workspace=workspace,
                    post=post,
                    channel=channels[n % len(channels)],
                    status=DeliveryStatus.SCHEDULED,
                    due_at=due,
                    next_attempt_at=due,
                )
            )
        Delivery.objects.bulk_create(deliveries, batch_size=2000)


def report(
    name: str, fake, processes: Processes, *, count: int, channels: int, first_due, done: bool
) -> None:  # type: ignore[no-untyped-def]
    from scheduler.models import Delivery, DeliveryStatus

    rows = list(
        Delivery.objects.filter(status=DeliveryStatus.PUBLISHED).values_list(
            "due_at", "published_at"
        )
    )
    lateness = [(published - due).total_seconds() for due, published in rows]
    texts = fake.call("texts")
    duplicates = len(texts) - len(set(texts))
    last = max((published for _, published in rows), default=first_due)
    total = (last - first_due).total_seconds()
    print(f"\n== {name} ==")
    print(f"load average          {' '.join(f'{n:.2f}' for n in os.getloadavg())} (2 shared cores)")
    print(f"deliveries            {count} ({len(rows)} published{'' if done else ', TIMED OUT'})")
    print(f"channels              {channels}")
    print(f"total seconds         {total:.2f} (first due -> last published)")
    print(f"publishes per second  {len(rows) / total if total > 0 else float('nan'):.1f}")
    print(
        "lateness p50/p95/p99/max  "
        + " / ".join(f"{percentile(lateness, p):.3f}" for p in (50, 95, 99))
        + f" / {max(lateness, default=float('nan')):.3f} s"
    )
    print(f"statuses at the fake  {len(texts)}")
    print(f"duplicates            {duplicates}")
    print(f"worker peak RSS       {processes.peak_rss_mb():.0f} MiB (largest worker process)")


if __name__ == "__main__":
    main()

"""Chaos benchmark: the engine keeps its promise while its workers, broker and database crash.

Runs its own PostgreSQL cluster (initdb in a temporary directory, free port) and its own Redis
(free port, no persistence) so it can crash them, and the fake Mastodon in its own process,
fronted so that 5 % of status posts lose their answer after the server stored the status (the
unknown outcome) and 5 % are answered 503 without being stored. POSTS x CHANNELS deliveries are
due at one instant; then, measured from that instant:

    +1 s   SIGKILL worker A (whatever it had received or was publishing is lost with it)
    +2 s   a second beat starts (two dispatchers from now on)
    +4 s   Redis is killed and restarted empty (every queued task is gone)
    +8 s   PostgreSQL immediate stop (a crash), started again 2 s later
    +10 s  a replacement worker starts

It prints: published, duplicates at the server, lost, seconds from the due time until every
delivery is final, and lateness p50/p99/max. Every engine setting is at its default unless given
in the environment.

    python bench/chaos.py [--posts 50] [--channels 20] [--timeout 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import ROOT, percentile
from dispatch import FakeProcess, make_channels, make_deliveries

PG_BIN = Path(shutil.which("pg_ctl") or "/usr/local/bin/pg_ctl").parent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=50)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="herald-chaos-"))
    work.chmod(0o755)  # the postgres user owns the cluster inside
    postgres, redis = Postgres(work / "pg"), Redis(work / "redis")
    processes: dict[str, subprocess.Popen[bytes]] = {}
    fake = None
    try:
        postgres.start()
        redis.start()
        setup(postgres, redis)
        fake = FakeProcess(0.05, faults=True)
        print(f"PostgreSQL :{postgres.port}, Redis :{redis.port}, fake Mastodon {fake.url}")
        print("answers lost after commit: 5 %, answered 503: 5 % (status posts)")
        run(args, fake, postgres, redis, processes, work)
    finally:
        for process in processes.values():
            stop(process)
        if fake is not None:
            fake.stop()
        redis.stop()
        postgres.stop()
        print(f"logs in {work}")


def setup(postgres: Postgres, redis: Redis) -> None:
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{postgres.port}/herald"
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis.port}/0"
    from common import setup_django

    setup_django(LOG_LEVEL="WARNING")


def run(args, fake, postgres, redis, processes, work: Path) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from scheduler.models import EngineHeartbeat

    workspace, channels = make_channels(fake, args.channels)
    processes["worker-a"] = spawn(work, "worker-a", worker_command("a"))
    processes["worker-b"] = spawn(work, "worker-b", worker_command("b"))
    processes["beat-1"] = spawn(work, "beat-1", beat_command(work, 1))
    deadline = time.monotonic() + 90
    while not EngineHeartbeat.objects.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no dispatch tick within 90 s; logs in {work}")
        time.sleep(0.5)
    due = timezone.now().replace(microsecond=0) + timedelta(seconds=10)
    count = args.posts * args.channels
    make_deliveries(workspace, channels, count, first_due=due, spacing=0.0)
    print(
        f"{count} deliveries ({args.posts} posts x {args.channels} channels) due at {due:%H:%M:%S}"
    )
    at(due, 1, "SIGKILL worker A", lambda: kill(processes.pop("worker-a")))
    at(
        due,
        2,
        "second beat",
        lambda: processes.update({"beat-2": spawn(work, "beat-2", beat_command(work, 2))}),
    )
    at(due, 4, "Redis killed, restarted empty", redis.crash_and_restart)
    at(due, 8, "PostgreSQL immediate stop", postgres.crash)
    at(due, 10, "PostgreSQL started", postgres.start)
    at(
        due,
        10,
        "replacement worker",
        lambda: processes.update({"worker-c": spawn(work, "worker-c", worker_command("c"))}),
    )
    final_at = wait_final(due, count, args.timeout)
    time.sleep(5)  # let any late duplicate reach the server before counting
    report(fake, due, count, final_at)


def at(due, offset: float, what: str, action) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    wait = (due + timedelta(seconds=offset) - timezone.now()).total_seconds()
    if wait > 0:
        time.sleep(wait)
    print(f"  +{offset:>4.1f} s  {what}")
    action()


def wait_final(due, count: int, timeout: float):  # type: ignore[no-untyped-def]
    """Poll (through the database restart) until every delivery is final. Returns when."""
    from django.db import close_old_connections, connection
    from django.utils import timezone

    from scheduler.models import Delivery

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            close_old_connections()
            open_count = Delivery.objects.exclude(
                status__in=["published", "failed", "missed", "cancelled"]
            ).count()
            if open_count == 0:
                return timezone.now()
        except Exception:
            connection.close()  # the database is down or restarting
        time.sleep(0.5)
    print(f"TIMED OUT after {timeout:g} s")
    return None


def report(fake, due, count: int, final_at) -> None:  # type: ignore[no-untyped-def]
    from django.db.models import Count

    from scheduler.models import Delivery

    rows = list(Delivery.objects.values_list("status", "published_at", "post__parts__text"))
    texts = fake.call("texts")
    at_server = set(texts)
    published = [r for r in rows if r[0] == "published"]
    lost = [r for r in rows if r[0] != "published" and r[2] not in at_server]
    late = [(p - due).total_seconds() for _, p, _ in published]
    statuses = dict(Delivery.objects.values_list("status").annotate(n=Count("id")))
    print(f"\n== chaos: {count} deliveries ==")
    print(f"load average          {' '.join(f'{n:.2f}' for n in os.getloadavg())} (2 shared cores)")
    print(f"states                {statuses}")
    print(f"published             {len(published)}")
    print(f"statuses at server    {len(texts)}")
    print(f"duplicates at server  {len(texts) - len(at_server)}")
    print(f"lost                  {len(lost)} (not published and not at the server)")
    final = f"{(final_at - due).total_seconds():.1f} s" if final_at else "NOT ALL FINAL"
    print(f"all final after       {final} (from the due time)")
    print(
        "lateness p50/p99/max  "
        + " / ".join(f"{percentile(late, p):.1f}" for p in (50, 99))
        + f" / {max(late, default=float('nan')):.1f} s"
    )


# -- processes --------------------------------------------------------------------------------


def worker_command(name: str) -> list[str]:
    return [
        *(sys.executable, "-m", "celery", "-A", "config", "worker"),
        *("--pool=threads", "--concurrency=8", "-Q", "herald,herald-dispatch"),
        *("--without-gossip", "--without-mingle", "--loglevel=WARNING", f"--hostname={name}@%h"),
    ]


def beat_command(work: Path, n: int) -> list[str]:
    schedule = f"--schedule={work / f'beat-{n}-schedule'}"
    return [sys.executable, "-m", "celery", "-A", "config", "beat", schedule, "--loglevel=WARNING"]


def spawn(work: Path, name: str, command: list[str]) -> subprocess.Popen[bytes]:
    log = open(work / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill(process)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postgres:
    """A throw-away cluster owned by the postgres user (initdb refuses to run as root)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        data.mkdir(parents=True)
        if self.as_postgres:
            shutil.chown(data, "postgres", "postgres")
        subprocess.run(
            [*self.as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "-N"],
            check=True, capture_output=True,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*self.as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
             "-l", str(self.data / "server.log"), "-w", "start"],
            check=True, capture_output=True,
        )  # fmt: skip

    def crash(self) -> None:
        self._ctl("-m", "immediate", "stop")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", *args],
            capture_output=True,
        )


class Redis:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        work.mkdir(parents=True)

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.work)]
        log = open(self.work / "redis.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(0.3)

    def crash_and_restart(self) -> None:
        self.stop(signal.SIGKILL)
        time.sleep(1)
        self.start()

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(how)
            self.process.wait()


if __name__ == "__main__":
    main()

"""Shared set-up for the benchmarks: a dedicated PostgreSQL database and real Celery processes.

The benchmarks never touch the development or test databases: they create (or empty)
`herald_bench` on the server named by DATABASE_URL (default: local PostgreSQL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bench_database_url() -> str:
    """DATABASE_URL's database name + `_bench` (`herald` -> `herald_bench`)."""
    base = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/herald"
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/') or '/herald'}_bench"))


def setup_django(**env: str) -> None:
    """Point Django at the bench database (created if missing), migrate, and set it up."""
    import psycopg

    url = bench_database_url()
    admin = urlsplit(url)._replace(path="/postgres")
    with psycopg.connect(urlunsplit(admin), autocommit=True) as conn:
        name = urlsplit(url).path.lstrip("/")
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "DATABASE_URL": url,
            "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
            "LOG_LEVEL": "WARNING",
            **env,
        }
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def reset_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE scheduler_deliveryattempt, scheduler_delivery, scheduler_partmedia, "
            "scheduler_postpart, scheduler_post, scheduler_channel, scheduler_engineheartbeat, "
            "accounts_membership, accounts_workspace, accounts_user RESTART IDENTITY CASCADE"
        )


def flush_broker() -> None:
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


class Processes:
    """Celery worker(s) and beat as real processes, with their peak RSS."""

    def __init__(
        self,
        log_dir: Path,
        *,
        workers: int,
        concurrency: int,
        pool: str = "threads",
        profile: bool = False,
    ) -> None:
        self.log_dir = log_dir
        self.workers = workers
        self.concurrency = concurrency
        self.pool = pool
        self.profile = profile  # sample each worker with py-spy (collapsed stacks in log_dir)
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        for n in range(self.workers):
            spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw"]
            spy += ["--subprocesses", "--gil", "-r", "50"]  # --gil: samples holding the GIL
            spy += ["-o", str(self.log_dir / f"worker{n}.stacks"), "--"]
            self._spawn(
                f"worker{n}",
                [
                    *(spy if self.profile else []),
                    *celery,
                    "worker",
                    f"--pool={self.pool}",
                    f"--concurrency={self.concurrency}",
                    "-Q",
                    "herald,herald-dispatch",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel=WARNING",
                    f"--hostname=bench{n}@%h",
                ],
            )
        self._spawn(
            "beat",
            [*celery, "beat", f"--schedule={self.log_dir / 'beat-schedule'}", "--loglevel=WARNING"],
        )

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append((name, proc))

    def peak_rss_mb(self) -> float:
        """Highest VmHWM among the worker processes and their pool children, in MiB."""
        peak = 0
        for name, proc in self.procs:
            if name.startswith("worker"):
                for pid in [proc.pid, *_children(proc.pid)]:
                    peak = max(peak, _vm_hwm_kb(pid))
        return peak / 1024

    def stop(self) -> None:
        # py-spy writes its samples on Ctrl-C (SIGINT), and Celery shuts down warm on it too.
        stop_signal = signal.SIGINT if self.profile else signal.SIGTERM
        for _, proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, stop_signal)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=60 if self.profile else 20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


class CpuMeter:
    """CPU seconds used by every process on the machine while it runs, grouped by role.

    Samples /proc twice a second in a thread; a process that ends between two samples loses
    at most its last half second (pool threads never end; PostgreSQL backends of the workers
    live as long as their connections).
    """

    def __init__(self, roles: dict[int, str] | None = None) -> None:
        self.roles = dict(roles or {})  # pid -> role, for processes the caller started
        self.seen: dict[int, tuple[str, float]] = {}  # pid -> (role, CPU seconds at last look)
        self.base: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ticks = os.sysconf("SC_CLK_TCK")

    def start(self) -> CpuMeter:
        self._sample(first=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        totals: dict[str, float] = {}
        for pid, (role, seconds) in self.seen.items():
            totals[role] = totals.get(role, 0.0) + seconds - self.base.get(pid, 0.0)
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def _sample(self, *, first: bool = False) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                seconds = (int(fields[11]) + int(fields[12])) / self._ticks
                if pid not in self.seen:
                    role = self._role(pid, entry)
                    if first:
                        self.base[pid] = seconds
                else:
                    role = self.seen[pid][0]
            except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                continue
            self.seen[pid] = (role, seconds)

    def _role(self, pid: int, entry: Path) -> str:
        if pid in self.roles:
            return self.roles[pid]
        command = (entry / "cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace")
        if pid == os.getpid():
            return "benchmark"
        for needle, role in (
            (" worker ", "celery workers"),
            (" beat ", "celery beat"),
            ("postgres", "postgresql"),
            ("redis-server", "redis"),
            ("py-spy", "py-spy"),
        ):
            if needle in command:
                return role
        parent = _parent(pid)
        return self.roles.get(parent, "other") if parent else "other"


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[1])
    except (FileNotFoundError, ValueError, IndexError):
        return 0


def wait_until(condition, *, timeout: float, interval: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]

"""Shared set-up of the benchmarks: a PostgreSQL database of their own, Django, Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mrdj_bench")
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def setup_django(**managed: str) -> dict[str, str]:
    """Point this process at the bench database, Redis and a fresh managed.env; migrate."""
    sys.path.insert(0, str(ROOT))
    folder = tempfile.mkdtemp(prefix="mrdj-bench-")
    env = {
        "DJANGO_SETTINGS_MODULE": "mrdj.settings",
        "MANAGED_ENV_PATH": os.path.join(folder, "managed.env"),
        "DATABASE_URL": BENCH_DATABASE_URL,
        "REDIS_URL": BENCH_REDIS_URL,
        "LOG_LEVEL": "WARNING",
    }
    for name in [n for n in os.environ if n.startswith(("FLAG_", "QUEUE_"))]:
        del os.environ[name]
    os.environ.update(env)
    _create_database()
    import django

    django.setup()
    from django.core.management import call_command

    from mrdj.config import get_config

    call_command("migrate", verbosity=0)
    if managed:
        get_config().store.update(managed)
    return {**os.environ}


def _create_database() -> None:
    import psycopg

    base, _, name = BENCH_DATABASE_URL.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def empty_queue_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE integrations_attempt, integrations_job, integrations_queuecounter RESTART IDENTITY"
        )


def load_jobs(total: int, queue: str = "rentguy") -> None:
    """Empty the queue tables and store total pending jobs, due now, as intake leaves them
    (rows and counters; no broker message: wake the queue for that)."""
    from django.utils import timezone

    from integrations import operations
    from integrations.models import Job, UpstreamState

    empty_queue_tables()
    UpstreamState.objects.all().delete()  # no breaker, pause or rate booking left from a run before
    now = timezone.now()
    Job.objects.bulk_create(
        (
            Job(
                queue=queue,
                payload={"lead": n, "name": "Bruiloft Jansen", "guests": 120},
                idempotency_key=f"bench-{n}",
                created_at=now,
                next_attempt_at=now,
            )
            for n in range(total)
        ),
        batch_size=1000,
    )
    operations.recount()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gunicorn(env: dict[str, str], workers: int, threads: int) -> Iterator[int]:
    """Serve mrdj with gunicorn on a free loopback port until the block ends; yields the port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mrdj.wsgi", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", str(workers), "--threads", str(threads), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


@contextlib.contextmanager
def celery_worker(
    env: dict[str, str],
    app: str,
    concurrency: int,
    log_path: Path,
    pool: str = "prefork",
    extra: Sequence[str] = (),
) -> Iterator[None]:
    """A `celery worker` (prefork by default, beat embedded, as in production) until the block ends.

    app: what `-A` names ("mrdj" as the README starts it; "bench.worker_app" adds the
    baseline tasks to the same app); pool and extra (more options, such as
    `--prefetch-multiplier 4`) for baselines that run with other worker settings.
    """
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", app, "worker", "--loglevel", "INFO"]
            + ["--pool", pool, "--concurrency", str(concurrency)]
            + ["--without-gossip", "--without-mingle", "--without-heartbeat", "--beat"]
            + list(extra),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while b" ready." not in log_path.read_bytes():
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"worker did not start:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.01)
            yield
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


def timed_drain(
    env: dict[str, str],
    app: str,
    concurrency: int,
    log_path: Path,
    done: Callable[[], int],
    total: int,
    *,
    pool: str = "prefork",
    extra: Sequence[str] = (),
    last_finished: Callable[[], float] | None = None,
    poll_seconds: float = 0.05,
    timeout_seconds: float = 600,
) -> float:
    """Start a worker on work already waiting, wait until done() reaches total; seconds from
    the worker reporting ready until the last one finished (last_finished(), a time.time(),
    when the work records it; else when the poll saw it)."""
    with celery_worker(env, app, concurrency, log_path, pool, extra):
        ready = time.time()
        deadline = time.monotonic() + timeout_seconds
        while (count := done()) < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"drained only {count} of {total}; see {log_path}")
            time.sleep(poll_seconds)
        end = last_finished() if last_finished else time.time()
    return end - ready


@contextlib.contextmanager
def stdin_child(args: list[str]) -> Iterator[subprocess.Popen]:
    """A Python child that serves until its standard input closes (the stand-in upstreams)."""
    child = subprocess.Popen(
        [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        yield child
    finally:
        child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

"""mrdj's settings, plus a count of every SQL statement this process sends, kept in Redis.

For bench/queries_per_job.py, which starts gunicorn and Celery with
DJANGO_SETTINGS_MODULE=bench.settings_query_count. PostgreSQL here has no
pg_stat_statements, so each process counts for itself.

Counted where psycopg sends: psycopg's Cursor.execute and executemany (and a
server-side cursor's execute), one each. Django's cursors are psycopg cursors, and so are
the raw ones the delivery engine's prepared statements run on (integrations/postgres.py),
which Django's connection.execute_wrappers would not see. Not counted: BEGIN and COMMIT
(psycopg sends them itself) and the fetches of a server-side cursor.

Every COUNT_FLUSH_SECONDS a daemon thread (and atexit) adds the counts to Redis
(BENCH_QUERY_COUNT_REDIS, else REDIS_URL): INCRBY on "<prefix>:total", and HINCRBY on
"<prefix>:groups" with the field "<role>|<group>": role is web (gunicorn), pool (a Celery
pool process), main (the Celery worker's main process), beat, or other; group is the
statement's first word and the first table it names ("SELECT integrations_job"); and on
"<prefix>:statements" with "<role>|<the statement's first 240 characters>" (the text with its
placeholders, so one line per distinct statement); and on "<prefix>:threads" with
"<role>|<thread>": the name of the thread that sent it, numbers dropped
("mrdj-alert-evaluator", "mrdj-inprocess-queue", "ThreadPoolExecutor", "MainThread").
A forked child (Celery's pool) starts from zero: its parent's counts stay the parent's.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
from collections import Counter

import psycopg

from mrdj.settings import *  # noqa: F403

COUNT_KEY_PREFIX = os.environ.get("BENCH_QUERY_COUNT_PREFIX", "bench:queries")
COUNT_FLUSH_SECONDS = 0.5
_REDIS_URL = os.environ.get("BENCH_QUERY_COUNT_REDIS") or os.environ.get(
    "REDIS_URL", "redis://127.0.0.1:6379/0"
)

_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE|JOIN)\s+"?([A-Za-z_][\w.]*)"?', re.IGNORECASE)
_FIRST = re.compile(r"\s*(\w+)(?:\s+\"?([\w.]+))?")


def _group(sql) -> tuple[str, str]:
    """First word and first table of a statement ("UPDATE integrations_job"), and its text's start."""
    if isinstance(sql, bytes):
        sql = sql.decode(errors="replace")
    elif not isinstance(sql, str):  # psycopg.sql.Composed and the like
        sql = str(sql)
    head = sql[:4000]
    text = " ".join(head[:600].split())[:240]
    first = _FIRST.match(head)
    verb = first.group(1).upper() if first else "?"
    table = _TABLE.search(head)
    if table:
        return f"{verb} {table.group(1)}", text
    return f"{verb} {first.group(2) if first and first.group(2) else ''}".strip(), text


class _Counts:
    """This process's counts since the last flush; replaced in a forked child."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        self.groups: dict = {}  # statement -> (group, text), so each statement is parsed once
        self.role = ""
        self.thread: threading.Thread | None = None
        self.client = None

    def add(self, sql) -> None:
        try:
            group = self.groups.get(sql) if isinstance(sql, str | bytes) else None
            if group is None:
                group = _group(sql)
                if isinstance(sql, str | bytes) and len(self.groups) < 5000:
                    self.groups[sql] = group
            thread = _thread_kind(threading.current_thread().name)
            with self.lock:
                self.counts[(*group, thread)] += 1
                if self.thread is None:
                    self.thread = threading.Thread(target=self._loop, name="bench-query-count", daemon=True)
                    self.thread.start()
        except Exception:  # noqa: S110 (a bench counter must never break a query)
            pass

    def _loop(self) -> None:
        stop = threading.Event()
        while not stop.wait(COUNT_FLUSH_SECONDS):
            self.flush()

    def flush(self) -> None:
        with self.lock:
            counts, self.counts = self.counts, Counter()
        if not counts:
            return
        try:
            if self.client is None:
                import redis

                self.client = redis.Redis.from_url(_REDIS_URL)
            role = self.role or _role()
            pipe = self.client.pipeline(transaction=False)
            pipe.incrby(f"{COUNT_KEY_PREFIX}:total", sum(counts.values()))
            by: dict[str, Counter] = {"groups": Counter(), "statements": Counter(), "threads": Counter()}
            for (group, text, thread), n in counts.items():
                by["groups"][group] += n
                by["statements"][text] += n
                by["threads"][thread] += n
            for name, counter in by.items():
                for key, n in counter.items():
                    pipe.hincrby(f"{COUNT_KEY_PREFIX}:{name}", f"{role}|{key}", n)
            pipe.execute()
        except Exception:
            with self.lock:  # Redis away for a moment: keep them for the next flush
                self.counts.update(counts)


_DIGITS = re.compile(r"[-_]?\d+")


def _thread_kind(name: str) -> str:
    """A thread's name without its numbers: "ThreadPoolExecutor-0_3" -> "ThreadPoolExecutor"."""
    return _DIGITS.sub("", name) or name


def _role() -> str:
    if "gunicorn" in " ".join(sys.argv):
        return "web"
    try:
        import billiard

        name = billiard.current_process().name
    except Exception:
        name = ""
    if name.startswith("ForkPoolWorker"):
        return "pool"
    if name == "MainProcess":
        return "main"
    if "beat" in name.lower():
        return "beat"
    return name or "other"


_state = _Counts()


def _after_fork_in_child() -> None:
    global _state
    _state = _Counts()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(lambda: _state.flush())


def _counting(method):
    def counted(self, query, *args, **kwargs):
        _state.add(query)
        return method(self, query, *args, **kwargs)

    counted.__wrapped__ = method
    return counted


if not getattr(psycopg.Cursor.execute, "__wrapped__", None):
    psycopg.Cursor.execute = _counting(psycopg.Cursor.execute)
    psycopg.Cursor.executemany = _counting(psycopg.Cursor.executemany)
    psycopg.ServerCursor.execute = _counting(psycopg.ServerCursor.execute)

"""Database queries per delivered job and per intake request, and per second idle, by process count.

    .venv/bin/python bench/queries_per_job.py [--rate 50] [--window 20] [--idle 10] [--save FILE]
    .venv/bin/python bench/queries_per_job.py --compare BEFORE.json AFTER.json

Needs PostgreSQL and Redis. Measures the tree it is run from, in a database of its own
(--database, default mrdj_bench_q, dropped and created anew at each run: two trees with
different migrations can take turns) and Redis DB 11 (--redis, emptied before each shape).
Four shapes, each started afresh, with a local upstream on 127.0.0.1 that answers 200 at
once (bench/upstream.py) behind the rentguy queue:

- in-process queue: gunicorn with 1 web worker, then with 4 (4 threads each);
- Celery over Redis: gunicorn (1 worker) for intake and `celery -A mrdj worker --beat
  --concurrency 2`, then 8.

Each shape: --idle seconds of no traffic after a 5 s settle (queries per second idle),
then a client POSTs --rate single-job intake requests per second, each with its own
Idempotency-Key; after 5 s of warm-up, a --window seconds long window counts the queries
of every mrdj process, the jobs delivered (status done in the database) and the
requests sent. The figures: queries in the window / jobs delivered in it, / requests sent
in it. The bench's own queries (the delivered count) are not counted.

How queries are counted in other processes (no pg_stat_statements here): they run with
DJANGO_SETTINGS_MODULE=bench.settings_query_count, which counts each statement psycopg
sends (Django's cursors and the engine's raw prepared statements alike) and adds the counts
to Redis every 0.5 s, by process role, by statement group and by thread; the alert
evaluator's threads get columns of their own.

Before and after a change: run it in a clone at the older commit (with this file and
bench/settings_query_count.py copied into its bench/), then in the current tree, each with
--save and --label, several times in turn; then --compare all the files: per label the
median over its runs, with the ratios 4 web workers / 1 and 8 children / 2. Target: within
1.10. --statements N also lists the N commonest statements per shape.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/mrdj_bench_q"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
TOKEN = "bench-queries-token"
PREFIX = "bench:queries"
SETTLE_SECONDS = 5.0
WARM_UP_SECONDS = 5.0
# Emptied before each shape when they exist (one tree has some, the other others): what a
# shape before left (an alert, a lease held by a process now gone, a process registry)
# must not change what the next one evaluates.
LEFTOVER_TABLES = ("alerting_evaluatorlease", "alerting_alert", "mrdj_process")
LEFTOVER_TABLES += ("integrations_workerheartbeat", "integrations_upstreamstate")


@dataclass(frozen=True)
class Shape:
    name: str
    title: str
    broker: bool
    web_workers: int
    children: int = 0


SHAPES = (
    Shape("inprocess-1", "in-process, 1 web worker", broker=False, web_workers=1),
    Shape("inprocess-4", "in-process, 4 web workers", broker=False, web_workers=4),
    Shape("celery-2", "Celery, 2 children", broker=True, web_workers=1, children=2),
    Shape("celery-8", "Celery, 8 children", broker=True, web_workers=1, children=8),
)
RATIOS = (
    ("inprocess-4", "inprocess-1", "ratio 4/1 web workers"),
    ("celery-8", "celery-2", "ratio 8/2 children"),
)


def recreate_database(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Counts:
    """The processes' query counts in Redis, read at the edges of a window."""

    def __init__(self, client):
        self.client = client

    def read(self) -> tuple[int, dict[str, dict[str, int]]]:
        total = int(self.client.get(f"{PREFIX}:total") or 0)
        return total, {name: self._hash(name) for name in ("groups", "statements", "threads")}

    def _hash(self, name: str) -> dict[str, int]:
        return {
            k.decode(errors="replace"): int(v) for k, v in self.client.hgetall(f"{PREFIX}:{name}").items()
        }

    def during(self, seconds: float) -> tuple[int, dict[str, dict[str, int]]]:
        """Queries counted by the processes over seconds + 1: in all, and by group, statement
        and thread."""
        total0, by0 = self.read()
        time.sleep(seconds)
        time.sleep(1.0)  # the last flushes (every 0.5 s) land; the same lag as at the start
        total1, by1 = self.read()
        return total1 - total0, {name: _minus(by1[name], by0[name]) for name in by1}


def _minus(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def empty_leftovers() -> None:
    from django.db import connection

    from bench.common import empty_queue_tables

    empty_queue_tables()
    with connection.cursor() as cursor:
        for table in LEFTOVER_TABLES:
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0]:
                cursor.execute(f"TRUNCATE {table} RESTART IDENTITY CASCADE")


def delivered() -> int:
    from integrations.models import Job, Status

    return Job.objects.filter(status=Status.DONE).count()


def measure(shape: Shape, env: dict[str, str], args, broker, folder: Path) -> dict:
    from bench.common import celery_worker, gunicorn
    from mrdj.config import get_config
    from tests.chaos import SteadyIntake
    from tests.processes import wait_until

    empty_leftovers()
    broker.flushdb()
    get_config().store.update({"QUEUE_REDIS_ENABLED": "true" if shape.broker else "false"})
    counts = Counts(broker)
    with contextlib.ExitStack() as stack:
        if shape.broker:
            stack.enter_context(celery_worker(env, "mrdj", shape.children, folder / f"{shape.name}.log"))
        port = stack.enter_context(gunicorn(env, workers=shape.web_workers, threads=4))
        time.sleep(SETTLE_SECONDS)
        idle_queries, idle_by = counts.during(args.idle)

        intake = SteadyIntake(
            f"http://127.0.0.1:{port}", TOKEN, args.rate, prefix=f"{shape.name}-{time.time():.0f}"
        )
        intake.start()
        time.sleep(WARM_UP_SECONDS)
        sent0, done0 = intake.sent, delivered()
        started = time.monotonic()
        queries, by = counts.during(args.window)
        seconds = time.monotonic() - started
        sent1, done1 = intake.sent, delivered()
        results = intake.stop()
        wait_until(lambda: delivered() >= len(results.accepted), 120, interval=0.1)
    refused = sum(n for status, n in results.statuses.items() if status not in (200, 202))
    jobs, requests = done1 - done0, sent1 - sent0
    figures = {
        "shape": asdict(shape),
        "idle_seconds": args.idle + 1.0,
        "idle_queries": idle_queries,
        "idle_per_second": idle_queries / (args.idle + 1.0),
        "idle_groups": idle_by["groups"],
        "idle_statements": idle_by["statements"],
        "idle_threads": idle_by["threads"],
        "idle_evaluator_per_second": evaluator_share(idle_by["threads"]) / (args.idle + 1.0),
        "window_seconds": seconds,
        "queries": queries,
        "jobs": jobs,
        "requests": requests,
        "refused": refused + results.unreachable,
        "per_job": queries / jobs if jobs else float("nan"),
        "per_request": queries / requests if requests else float("nan"),
        "groups": by["groups"],
        "statements": by["statements"],
        "threads": by["threads"],
        "evaluator_per_job": evaluator_share(by["threads"]) / jobs if jobs else float("nan"),
    }
    print(
        f"{shape.title:<27} idle {figures['idle_per_second']:7.1f} q/s   window {seconds:4.1f} s: "
        f"{queries:6} queries, {jobs:5} jobs done, {requests:5} requests ({figures['refused']} refused): "
        f"{figures['per_job']:6.2f} per job, {figures['per_request']:6.2f} per request",
        flush=True,
    )
    return figures


def evaluator_share(threads: dict[str, int]) -> int:
    """Queries sent by the alert evaluator's threads (the evaluator, its listener)."""
    return sum(n for key, n in threads.items() if "alert-evaluator" in key or "alert-listener" in key)


def top_groups(rates: dict[str, float], limit: int) -> list[str]:
    ordered = sorted(rates.items(), key=lambda item: -item[1])[:limit]
    return [f"    {rate:8.2f}  {group}" for group, rate in ordered]


def measure_tree(args) -> dict:
    os.environ["BENCH_DATABASE_URL"] = args.database
    os.environ["BENCH_REDIS_URL"] = args.redis
    recreate_database(args.database)
    import redis

    from bench.common import setup_django
    from bench.upstream import running

    with running() as upstream_url:
        env = setup_django(
            FLAG_RENTGUY_INTEGRATION="on",
            QUEUE_REDIS_ENABLED="false",
            INTEGRATIONS_API_TOKEN=TOKEN,
            RENTGUY_API_URL=upstream_url + "/leads",
        )
        env["DJANGO_SETTINGS_MODULE"] = "bench.settings_query_count"
        env["BENCH_QUERY_COUNT_REDIS"] = args.redis
        env["BENCH_QUERY_COUNT_PREFIX"] = PREFIX
        folder = Path(env["MANAGED_ENV_PATH"]).parent
        broker = redis.Redis.from_url(args.redis)
        shapes = [shape for shape in SHAPES if shape.name in args.shapes]
        print(f"rate {args.rate:g}/s, window {args.window:g} s, idle {args.idle:g} s; logs in {folder}")
        results = {shape.name: measure(shape, env, args, broker, folder) for shape in shapes}
        broker.flushdb()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    ).stdout.strip()
    return {
        "tree": str(Path(__file__).resolve().parent.parent),
        "commit": commit + ("+changes" if dirty or not commit else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rate": args.rate,
        "window": args.window,
        "shapes": results,
    }


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


MEASURES = (
    ("per_job", "queries per job"),
    ("per_request", "per intake request"),
    ("idle_per_second", "idle q/s"),
    ("evaluator_per_job", "evaluator thread per job"),
    ("idle_evaluator_per_second", "evaluator idle q/s"),
)


def columns(runs: list[dict]) -> dict[str, list[dict]]:
    """The runs by label (else commit), in the order first seen: a column each."""
    by_label: dict[str, list[dict]] = {}
    for run in runs:
        by_label.setdefault(run.get("label") or run["commit"], []).append(run)
    return by_label


def median_of(runs: list[dict], figure) -> float:
    values = [figure(run) for run in runs]
    values = [value for value in values if value == value]  # not NaN
    return statistics.median(values) if values else float("nan")


def summed(runs: list[dict], shape: str, counts: str, per: str) -> dict[str, float]:
    """A shape's counts by group over all the runs of a column, per job (or per idle second)."""
    total: dict[str, int] = {}
    for run in runs:
        for key, n in run["shapes"][shape].get(counts, {}).items():
            total[key] = total.get(key, 0) + n
    divisor = sum(run["shapes"][shape][per] for run in runs) or 1
    return {key: n / divisor for key, n in total.items()}


def table(runs: list[dict], statements: int = 0) -> None:
    """A column per label (before, after): the median over its runs; a row per shape, and the
    ratios 4/1 and 8/2 (each run's own ratio, then the median: runs taken minutes apart on a
    shared machine are compared within themselves)."""
    cols = columns(runs)
    names = [shape.name for shape in SHAPES if all(shape.name in run["shapes"] for run in runs)]
    width = 10 * len(cols)
    print(f"{'':<27}" + "".join(f"  {title:>{width}}" for _, title in MEASURES))
    print(f"{'shape':<27}" + "".join("  " + "".join(f"{label[:9]:>10}" for label in cols) for _ in MEASURES))
    for shape in SHAPES:
        if shape.name not in names:
            continue
        cells = (
            f"{median_of(col, _figure(shape.name, key)):>10.2f}"
            for key, _ in MEASURES
            for col in cols.values()
        )
        print(f"{shape.title:<27}" + _grouped(list(cells), len(cols)))
        for big, small, title in RATIOS:
            if big == shape.name and small in names:
                cells = (
                    f"{median_of(col, _ratio(big, small, key)):>10.2f}"
                    for key, _ in MEASURES
                    for col in cols.values()
                )
                print(f"  {title:<25}" + _grouped(list(cells), len(cols)))
    counts = ", ".join(f"{label} {len(col)}" for label, col in cols.items())
    print(f"(medians over runs: {counts})")
    for run in runs:
        for name in names:
            figures = run["shapes"][name]
            achieved = figures["requests"] / figures["window_seconds"]
            if achieved < 0.9 * run["rate"] or figures["refused"]:
                label = run.get("label") or run["commit"]
                print(
                    f"  note: {label} {run['date']} {name}: {achieved:.0f} requests/s "
                    f"of {run['rate']:g}, {figures['refused']} refused or unanswered"
                )
    for name in names:
        title = next(shape.title for shape in SHAPES if shape.name == name)
        print(f"\n{title}: queries per job by role|group (top 8), then idle q/s (top 5)")
        for label, col in cols.items():
            print(f"  {label}:")
            print("\n".join(top_groups(summed(col, name, "groups", "jobs"), 8)))
            print("    idle:")
            print("\n".join(top_groups(summed(col, name, "idle_groups", "idle_seconds"), 5)))
            print("    per job by role|thread, then idle q/s:")
            print("\n".join(top_groups(summed(col, name, "threads", "jobs"), 6)))
            print("    idle:")
            print("\n".join(top_groups(summed(col, name, "idle_threads", "idle_seconds"), 6)))
            if statements:
                print(f"    statements per job (top {statements}):")
                print("\n".join(top_groups(summed(col, name, "statements", "jobs"), statements)))
                print(f"    statements per second idle (top {statements}):")
                print("\n".join(top_groups(summed(col, name, "idle_statements", "idle_seconds"), statements)))


def _figure(shape: str, key: str):
    return lambda run: run["shapes"][shape].get(key, float("nan"))


def _ratio(big: str, small: str, key: str):
    return lambda run: ratio(
        run["shapes"][big].get(key, float("nan")), run["shapes"][small].get(key, float("nan"))
    )


def _grouped(cells: list[str], size: int) -> str:
    return "".join("  " + "".join(cells[i : i + size]) for i in range(0, len(cells), size))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0, help="intake requests per second")
    parser.add_argument("--window", type=float, default=20.0, help="seconds counted under load")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds counted with no traffic")
    parser.add_argument(
        "--shapes", nargs="+", choices=[s.name for s in SHAPES], default=[s.name for s in SHAPES]
    )
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="dropped and created anew")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="emptied before each shape")
    parser.add_argument("--save", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--label", help="the run's name in the table (default: its commit)")
    parser.add_argument("--statements", type=int, default=0, help="also list the N commonest statements")
    parser.add_argument(
        "--compare", nargs="+", type=Path, metavar="JSON", help="print saved runs side by side"
    )
    args = parser.parse_args()
    if args.compare:
        runs = [json.loads(path.read_text()) for path in args.compare]
        for run in runs:
            print(f"{run.get('label') or run['commit']}: {run['tree']} ({run['date']}, {run['rate']:g}/s)")
        print()
        table(runs, args.statements)
        return
    figures = measure_tree(args)
    if args.label:
        figures["label"] = args.label
    if args.save:
        args.save.write_text(json.dumps(figures, indent=1))
    print()
    table([figures], args.statements)


if __name__ == "__main__":
    main()

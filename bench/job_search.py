"""What the dashboard's job list and search cost with 10,000 and with 1,000,000 jobs.

    .venv/bin/python bench/job_search.py [--small 10000] [--large 1000000] [--runs 7] [--plans]

Needs PostgreSQL only: the script creates a database of its own (mrdj_bench_search, on
the server of BENCH_DATABASE_URL), migrates it and drops it at the end (--keep leaves
it). Jobs are written straight into PostgreSQL with INSERT ... SELECT generate_series:
two queues (2/3 rentguy, 1/3 sevensa), 95% delivered, 3% dead-letter with a handful of
last errors, 1% pending, 1% waiting to retry; payload {"lead": "Bruiloft <n>", "email":
"guest<n>@example.org", "n": n}, key 'key-<n>', accepted over the last 30 days in id order.

The small table is the baseline: every query runs on it, then the table is filled again
with the large count (same mix, same 30 days), ANALYZEd, and every query runs again.
Each figure is the median of --runs calls of the real `jobs_page()` (filters parsed by
`read_filters()`) or `dead_letter_causes()` on the rentguy queue, after one warm-up
call. The SQL of one more call is captured and EXPLAIN ANALYZEd: "rows read" is what
the scans of integrations_job read (rows returned plus rows their filters removed), the
plan names the indexes used, or says "Seq Scan". The ratio large / small is the
figure: about 1 means the query's cost does not grow with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_SERVER = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mrdj_bench").rpartition(
    "/"
)[0]
DATABASE_NAME = "mrdj_bench_search"
os.environ["BENCH_DATABASE_URL"] = f"{_SERVER}/{DATABASE_NAME}"  # bench.common reads it on import

from bench.common import setup_django  # noqa: E402

QUEUE = "rentguy"
CAUSE = "network error (could not connect)"

# %% is a literal % for the driver. n % 3 picks the queue and n % 100 the status: 3 and
# 100 share no factor, so both queues get every status in the same proportions.
FILL = """
INSERT INTO integrations_job (queue, status, payload, idempotency_key, attempts, created_at,
                              next_attempt_at, finished_at, claim_token, last_status_code,
                              last_error)
SELECT queue, status,
       jsonb_build_object('lead', 'Bruiloft ' || n, 'email', 'guest' || n || '@example.org', 'n', n),
       'key-' || n,
       CASE status WHEN 'done' THEN 1 WHEN 'dead' THEN 5 WHEN 'retry' THEN 2 ELSE 0 END,
       created, created,
       CASE WHEN status IN ('done', 'dead') THEN created + interval '2 seconds' END,
       '',
       CASE WHEN status = 'done' THEN 200 WHEN error LIKE 'HTTP 5%%' THEN 500 END,
       error
FROM (
    SELECT n, queue, status, created,
           CASE WHEN status = 'dead' THEN
                CASE WHEN n / 100 %% 10 < 6 THEN 'HTTP 500 Internal Server Error'
                     WHEN n / 100 %% 10 < 9 THEN 'network error (could not connect)'
                     WHEN queue = 'sevensa' THEN 'SEVENSA_SUBMIT_URL is not set'
                     ELSE 'HTTP 503 Service Unavailable' END
                WHEN status = 'retry' THEN 'HTTP 500 Internal Server Error'
                ELSE '' END AS error
    FROM (
        SELECT n,
               CASE WHEN n %% 3 = 0 THEN 'sevensa' ELSE 'rentguy' END AS queue,
               CASE WHEN n %% 100 < 95 THEN 'done' WHEN n %% 100 < 98 THEN 'dead'
                    WHEN n %% 100 = 98 THEN 'pending' ELSE 'retry' END AS status,
               now() - (%(count)s - n) * (interval '30 days' / %(count)s) AS created
        FROM generate_series(1, %(count)s) AS n
    ) AS jobs
) AS jobs
"""


@dataclass
class Result:
    ms: float
    rows: int  # what the call returned (jobs on the page, or causes)
    read: int = 0  # rows the scans of integrations_job read, by EXPLAIN ANALYZE
    plan: str = ""
    seq_scan: bool = False
    plans: list[str] = field(default_factory=list)


def fill(count: int) -> None:
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE integrations_attempt, integrations_job RESTART IDENTITY CASCADE")
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(FILL, {"count": count})
        cursor.execute("VACUUM ANALYZE integrations_job")
        cursor.execute("SET synchronous_commit = on")
    print(f"{count:>9,} jobs written and analyzed in {time.monotonic() - started:.1f} s", flush=True)


def queries(count: int) -> dict[str, Callable[[], int]]:
    """The calls to measure, by name, on a table of count jobs; each returns its row count."""
    from django.utils import timezone

    from dashboard.job_pages import dead_letter_causes, jobs_page, read_filters
    from integrations.models import Job

    def page(**params: str) -> Callable[[], int]:
        return lambda: len(jobs_page(QUEUE, read_filters(params))["jobs"])

    key_n = count // 2 + 1 if (count // 2 + 1) % 3 else count // 2 + 2  # a rentguy job, mid-table
    assert Job.objects.filter(queue=QUEUE, idempotency_key=f"key-{key_n}").exists()
    second = jobs_page(QUEUE, read_filters({}))["next_before"]
    since = timezone.now() - timedelta(days=7)
    until = since + timedelta(hours=1)
    return {
        "newest page": page(),
        "second page (before=)": page(before=str(second)),
        "state=dead": page(state="dead"),
        "state=dead + cause": page(state="dead", cause=CAUSE),
        "state=pending": page(state="pending"),
        "since/until: 1 hour a week ago": page(since=since.isoformat(), until=until.isoformat()),
        "q=key (existing key)": page(q=f"key-{key_n}"),
        "q=text hit (Bruiloft 99)": page(q="Bruiloft 99"),
        "q=text miss (worst case)": page(q="Verjaardag Pietersen"),
        "dead_letter_causes (all)": lambda: len(dead_letter_causes(QUEUE)),
        "dead_letter_causes (among=500)": lambda: len(dead_letter_causes(QUEUE, among=500)),
    }


def explain(sql: str) -> tuple[int, list[str], bool, str]:
    """Rows the scans of integrations_job read, the indexes used, whether one is a Seq Scan,
    and the plan as text (EXPLAIN ANALYZE: the query runs once more)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        raw = cursor.fetchone()[0]
        cursor.execute("EXPLAIN " + sql)
        text = "\n".join(line for (line,) in cursor.fetchall())
    tree = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    read, used, seq = 0, [], False
    stack = [tree]
    while stack:
        node = stack.pop()
        stack.extend(node.get("Plans", []))
        if node.get("Relation Name") == "integrations_job":
            removed = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
            read += round((node["Actual Rows"] + removed) * node["Actual Loops"])
            if "Seq Scan" in node["Node Type"]:
                seq = True
                used.append("Seq Scan")
        if "Index Name" in node:
            backward = " backward" if node.get("Scan Direction") == "Backward" else ""
            used.append(node["Index Name"] + backward)
    return read, used, seq, text


def measure(call: Callable[[], int], runs: int) -> Result:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rows = call()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    result = Result(statistics.median(times), rows)
    with CaptureQueriesContext(connection) as captured:
        call()
    used: list[str] = []
    for query in captured.captured_queries:
        read, names, seq, text = explain(query["sql"])
        result.read += read
        result.seq_scan |= seq
        used += [name for name in names if name not in used]
        result.plans.append(f"{query['sql']}\n{text}")
    result.plan = " + ".join(used) or "-"
    return result


def run_all(count: int, runs: int) -> dict[str, Result]:
    results = {}
    for name, call in queries(count).items():
        results[name] = measure(call, runs)
        print(f"  {count:>9,} jobs  {name:<32} {results[name].ms:9.2f} ms", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--plans", action="store_true", help="print every plan at the large size")
    parser.add_argument("--keep", action="store_true", help=f"keep the {DATABASE_NAME} database")
    args = parser.parse_args()

    setup_django()
    from django.db import connection

    try:
        fill(args.small)
        small = run_all(args.small, args.runs)
        fill(args.large)
        large = run_all(args.large, args.runs)
    finally:
        connection.close()
        if not args.keep:
            drop_database()

    print(
        f"\n| query ({QUEUE}, median of {args.runs}) | {args.small:,} jobs | {args.large:,} jobs "
        f"| ratio | rows read | plan at {args.large:,} |\n| --- | --- | --- | --- | --- | --- |"
    )
    for name, result in large.items():
        base = small[name]
        print(
            f"| {name} | {base.ms:.2f} ms | {result.ms:.2f} ms | {result.ms / base.ms:.2f} "
            f"| {base.read:,} -> {result.read:,} | {result.plan} |"
        )
    scanned = [name for name, result in large.items() if result.seq_scan]
    print(f"\nSeq Scan on integrations_job at {args.large:,} jobs: {', '.join(scanned) or 'none'}")
    for name, result in large.items():
        if args.plans or result.seq_scan or result.ms / small[name].ms > 3:
            print(f"\n--- {name} ({result.ms:.2f} ms, {result.read:,} rows read)")
            print("\n\n".join(result.plans))


def drop_database() -> None:
    import psycopg

    with psycopg.connect(f"{_SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()

"""Median latency of GET /metrics/queues with 1,000 and with 1,000,000 jobs in the table.

    .venv/bin/python bench/metrics_latency.py [--requests 300] [--large 1000000]

Jobs are 89% delivered, 10% pending, 1% dead-letter, spread over both queues, written
straight into PostgreSQL (BENCH_DATABASE_URL) and counted once, as the running system
would have counted them. The endpoint is served by gunicorn and asked with the metrics
token over one keep-alive connection. Targets: the large median within 1.5x the small
one, and under 20 ms.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import empty_queue_tables, gunicorn, setup_django

TOKEN = "bench-metrics-token"

FILL = """
INSERT INTO integrations_job (queue, status, payload, idempotency_key, attempts, created_at,
                              next_attempt_at, finished_at, claim_token, last_error)
SELECT CASE WHEN n %% 2 = 0 THEN 'rentguy' ELSE 'sevensa' END,
       CASE WHEN n %% 100 = 0 THEN 'dead' WHEN n %% 10 = 1 THEN 'pending' ELSE 'done' END,
       jsonb_build_object('lead', n, 'name', 'Bruiloft Jansen'),
       'bench-' || n, 1,
       now() - (%(count)s - n) * interval '10 ms',
       now() - (%(count)s - n) * interval '10 ms',
       CASE WHEN n %% 10 = 1 THEN NULL ELSE now() END, '', ''
FROM generate_series(1, %(count)s) AS n
"""


def fill(count: int) -> None:
    from django.db import connection

    from integrations import operations

    empty_queue_tables()
    with connection.cursor() as cursor:
        cursor.execute(FILL, {"count": count})
        cursor.execute("ANALYZE integrations_job")
    operations.recount()


def median_latency_ms(port: int, requests: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    latencies = []
    for index in range(requests + 20):
        started = time.perf_counter()
        connection.request("GET", "/metrics/queues", headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"/metrics/queues answered {response.status}")
        if index >= 20:  # the first ones warm caches and connections
            latencies.append((time.perf_counter() - started) * 1000)
    connection.close()
    return statistics.median(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()

    # Over Redis with no worker running: nothing moves the jobs while they are measured.
    env = setup_django(METRICS_API_TOKEN=TOKEN, QUEUE_REDIS_ENABLED="true")
    try:
        with gunicorn(env, workers=1, threads=2) as port:
            results = {}
            for count in (args.small, args.large):
                started = time.monotonic()
                fill(count)
                print(f"{count:>9} jobs written in {time.monotonic() - started:.1f} s", flush=True)
                results[count] = median_latency_ms(port, args.requests)
                print(
                    f"{count:>9} jobs: median {results[count]:.2f} ms over {args.requests} requests",
                    flush=True,
                )
        ratio = results[args.large] / results[args.small]
        print(
            f"ratio {args.large} / {args.small} jobs: {ratio:.2f} (target <= 1.5); "
            f"large median {results[args.large]:.2f} ms (target < 20 ms)"
        )
    finally:
        empty_queue_tables()


if __name__ == "__main__":
    main()

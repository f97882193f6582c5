"""Jobs/s accepted by POST /integrations/<queue>/jobs, one at a time and in bulk, against a
baseline view that answers 202 at once.

    .venv/bin/python bench/intake.py [--seconds 5] [--rounds 3] [--batch 100]

All three are served by the same gunicorn (2 workers x 4 threads) on PostgreSQL with the
queue over Redis, as in production, and loaded by the same closed-loop client
(2 processes x 4 keep-alive connections). Each round loads the baseline, then the
single-job form ({"payload": ...}, one job per request), then the bulk form
({"jobs": [...]}, --batch jobs per request, each with an idempotency key of its own, so
that every job is new). Every job is counted in the table afterwards. The figures, median
over the rounds:

- single: intake requests/s / baseline requests/s. Target >= 0.5.
- bulk: jobs/s accepted in bulk / baseline requests/s. Target >= 5.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import load
from bench.common import empty_queue_tables, gunicorn, setup_django

TOKEN = "bench-intake-token"
PAYLOAD = {"lead": "Bruiloft Jansen", "date": "2027-06-12", "guests": 120}
JOBS = "/integrations/rentguy/jobs"


def bulk_body(batch: int, tag: str) -> bytes:
    """batch jobs, keyed tag-0 ... tag-(batch-1): load.run makes tag unique per request."""
    payload = json.dumps(PAYLOAD)
    items = ",".join(f'{{"payload": {payload}, "idempotency_key": "{tag}-{n}"}}' for n in range(batch))
    return f'{{"jobs": [{items}]}}'.encode()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100, help="jobs per bulk request (at most 500)")
    args = parser.parse_args()

    env = setup_django(
        QUEUE_REDIS_ENABLED="true", INTEGRATIONS_API_TOKEN=TOKEN, FLAG_RENTGUY_INTEGRATION="on"
    )
    import redis
    from django.conf import settings

    from integrations.models import Job

    empty_queue_tables()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    single = json.dumps({"payload": PAYLOAD}).encode()
    bulk = functools.partial(bulk_body, args.batch)
    with gunicorn({**env, "DJANGO_SETTINGS_MODULE": "bench.settings"}, workers=2, threads=4) as port:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

        def measure(path: str, body, per_request: int) -> tuple[float, float]:
            """Requests/s and median latency (ms), after checking every job was stored."""
            before = Job.objects.count()
            rate, latencies = load.run(port, "POST", path, body, headers, seconds=args.seconds)
            if per_request:
                stored, sent = Job.objects.count() - before, len(latencies) * per_request
                if stored != sent:
                    raise SystemExit(f"{path}: {sent} jobs sent, {stored} stored")
            return rate, statistics.median(latencies) * 1000

        for path, body in (("/bench/accepted", single), (JOBS, single), (JOBS, bulk)):
            load.run(port, "POST", path, body, headers, seconds=1)  # warm every path up
        singles, bulks = [], []
        for round_number in range(1, args.rounds + 1):
            baseline, _ = measure("/bench/accepted", single, 0)
            one, one_ms = measure(JOBS, single, 1)
            many, many_ms = measure(JOBS, bulk, args.batch)
            singles.append(one / baseline)
            bulks.append(many * args.batch / baseline)
            print(
                f"round {round_number}: baseline {baseline:6.0f} req/s | single {one:6.0f} jobs/s "
                f"(median {one_ms:.1f} ms), ratio {singles[-1]:.2f} | bulk {many:5.1f} req/s = "
                f"{many * args.batch:6.0f} jobs/s (median {many_ms:.1f} ms per {args.batch}), "
                f"ratio {bulks[-1]:.2f}",
                flush=True,
            )
        print(f"median ratio single-job intake / baseline {statistics.median(singles):.2f} (target >= 0.5)")
        print(
            f"median ratio bulk intake jobs/s ({args.batch} per request) / baseline req/s "
            f"{statistics.median(bulks):.2f} (target >= 5)"
        )
    broker.flushdb()


if __name__ == "__main__":
    main()

"""Jobs/s drained by Celery workers, against raw Celery draining no-op tasks (same worker, same run).

    .venv/bin/python bench/queue_throughput.py [--jobs 5000] [--concurrency 4] [--rounds 3]

Needs PostgreSQL and Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL). Each round pre-loads
the broker with N no-op tasks, then with N accepted jobs (rows plus broker messages),
and each time starts one `celery worker` (same command, same settings, beat included)
and times the drain from the worker reporting ready until the last one finished.
The jobs go to a local upstream that answers 200 at once. Rounds alternate to spread
the noise of a shared machine over both; the median ratio is the figure. Target >= 0.5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import celery_worker, empty_queue_tables, setup_django


def drain(env: dict[str, str], concurrency: int, done, total: int) -> float:
    """Start a worker, wait until done() reaches total; seconds from ready to drained."""
    log_path = Path(env["MANAGED_ENV_PATH"]).with_name("worker.log")
    with celery_worker(env, "bench.worker_app", concurrency, log_path):
        started = time.perf_counter()
        deadline = time.monotonic() + 600
        while done() < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"drained only {done()} of {total}")
            time.sleep(0.1)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    env = setup_django(QUEUE_REDIS_ENABLED="true")
    import redis
    from django.conf import settings
    from django.utils import timezone

    from bench import upstream
    from bench.worker_app import noop
    from integrations import dispatch, services
    from integrations.models import Job, Status
    from mrdj.config import get_config

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    ratios = []
    with upstream.running() as url:
        get_config().store.update({"RENTGUY_API_URL": url + "/leads", "SEVENSA_SUBMIT_URL": url + "/submit"})
        for round_number in range(1, args.rounds + 1):
            broker.flushdb()
            for _ in range(args.jobs):
                noop.apply_async()
            baseline = drain(
                env, args.concurrency, lambda: int(broker.get("bench:noop:done") or 0), args.jobs
            )

            broker.flushdb()
            empty_queue_tables()
            now = timezone.now()
            jobs = Job.objects.bulk_create(
                Job(
                    queue="rentguy",
                    payload={"lead": n, "name": "Bruiloft Jansen", "guests": 120},
                    idempotency_key=f"bench-{n}",
                    created_at=now,
                    next_attempt_at=now,
                )
                for n in range(args.jobs)
            )
            services.recount()
            dispatch.hand_over([(job.pk, job.queue) for job in jobs], via_broker=True, mark=True)
            delivered = drain(
                env, args.concurrency, lambda: Job.objects.filter(status=Status.DONE).count(), args.jobs
            )
            baseline_rate, mrdj_rate = args.jobs / baseline, args.jobs / delivered
            ratios.append(mrdj_rate / baseline_rate)
            print(
                f"round {round_number}: raw Celery {baseline_rate:5.0f} tasks/s, "
                f"mrdj {mrdj_rate:5.0f} jobs/s, ratio {ratios[-1]:.2f}",
                flush=True,
            )
    print(
        f"{args.jobs} jobs, concurrency {args.concurrency}: median ratio mrdj / raw Celery "
        f"{statistics.median(ratios):.2f} (target >= 0.5)"
    )


if __name__ == "__main__":
    main()

"""Jobs/s drained by mrdj's Celery worker, against raw Celery draining no-op tasks (same run).

    .venv/bin/python bench/queue_throughput.py [--jobs 5000] [--concurrency 4] [--rounds 3]

Needs PostgreSQL and Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL). Each round has two
phases, each on work loaded before its worker starts, each with its own worker
(prefork, --concurrency 4, beat embedded), timed from the worker reporting ready
until the last one finished:

- raw Celery: N no-op tasks (`bench.noop`) pre-loaded into Redis and drained by
  `celery -A bench.worker_app worker --prefetch-multiplier 4` with the task acknowledged
  early: Celery's default worker settings, not mrdj's (acks late, prefetch 1).
- mrdj: N pending jobs stored (as intake leaves them) and their queue woken
  (`handoff.wake`: one drain task that claims and delivers them in batches), drained by
  `celery -A mrdj worker` as the README starts it, to a local upstream that answers 200
  at once (bench/upstream.py, its own process).

The phases swap order every round, to spread the noise of a shared machine over
both; the median ratio is the figure. Target >= 1.0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_jobs, setup_django, timed_drain


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

    from bench import upstream, worker_app
    from integrations import engine, handoff
    from integrations.models import Job, Status
    from integrations.queues import QUEUES
    from mrdj.config import get_config

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    folder = Path(env["MANAGED_ENV_PATH"]).parent
    limits = QUEUES["rentguy"].limits()
    print(
        f"raw Celery: celery -A bench.worker_app worker --pool prefork --concurrency {args.concurrency} "
        f"{' '.join(worker_app.WORKER_DEFAULTS)} (beat embedded); bench.noop acks_late="
        f"{worker_app.noop.acks_late}, reject_on_worker_lost={worker_app.noop.reject_on_worker_lost}\n"
        f"mrdj: celery -A mrdj worker --pool prefork --concurrency {args.concurrency} (beat embedded); "
        f"acks late, prefetch multiplier {settings.CELERY_WORKER_PREFETCH_MULTIPLIER}; "
        f"QUEUE_WORKER_THREADS={engine.threads_per_queue()}, "
        f"QUEUE_RENTGUY_MAX_IN_FLIGHT={limits.max_in_flight}, "
        f"QUEUE_RENTGUY_RATE_PER_S={limits.rate_per_s:g}\n"
        f"worker logs in {folder}",
        flush=True,
    )

    def run_raw(round_number: int) -> float:
        broker.flushdb()
        for _ in range(args.jobs):
            worker_app.noop.apply_async()
        return timed_drain(
            env,
            "bench.worker_app",
            args.concurrency,
            folder / f"raw-{round_number}.log",
            lambda: int(broker.get(worker_app.NOOP_DONE) or 0),
            args.jobs,
            extra=worker_app.WORKER_DEFAULTS,
        )

    def run_mrdj(round_number: int) -> float:
        broker.flushdb()
        load_jobs(args.jobs)
        handoff.wake("rentguy")
        return timed_drain(
            env,
            "mrdj",
            args.concurrency,
            folder / f"mrdj-{round_number}.log",
            lambda: Job.objects.filter(status=Status.DONE).count(),
            args.jobs,
        )

    ratios = []
    with upstream.running() as url:
        get_config().store.update({"RENTGUY_API_URL": url + "/leads", "SEVENSA_SUBMIT_URL": url + "/submit"})
        for round_number in range(1, args.rounds + 1):
            if round_number % 2:
                baseline = run_raw(round_number)
                delivered = run_mrdj(round_number)
            else:
                delivered = run_mrdj(round_number)
                baseline = run_raw(round_number)
            baseline_rate, mrdj_rate = args.jobs / baseline, args.jobs / delivered
            ratios.append(mrdj_rate / baseline_rate)
            print(
                f"round {round_number}: raw Celery {baseline_rate:5.0f} tasks/s, "
                f"mrdj {mrdj_rate:5.0f} jobs/s, ratio {ratios[-1]:.2f}",
                flush=True,
            )
    print(
        f"{args.jobs} jobs, concurrency {args.concurrency}: median ratio mrdj / raw Celery "
        f"{statistics.median(ratios):.2f} (target >= 1.0)"
    )


if __name__ == "__main__":
    main()

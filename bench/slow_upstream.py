"""Jobs/s to a slow upstream: mrdj's engine against raw Celery tasks making the same POST.

    .venv/bin/python bench/slow_upstream.py [--jobs 2000] [--delay-ms 100 500] [--rounds 2]

Needs PostgreSQL and Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL). A local upstream
(bench/upstream.py, its own process, asyncio, keep-alive) answers 200 after the delay.
Per delay and round, two phases, each on work loaded before its worker starts:

- mrdj: N pending jobs stored (as intake leaves them) and their queue woken
  (`handoff.wake`: one drain task), drained by `celery -A mrdj worker --concurrency 4`
  as the README starts it (prefork, beat embedded) with mrdj's default queue settings.
- raw Celery: N `bench.post` tasks (urllib3 PoolManager, the same JSON body and the
  Idempotency-Key and bearer headers) on `--pool threads --concurrency 64`, with Celery's
  default worker settings (acknowledged early, `--prefetch-multiplier 4`), not mrdj's.

Each is timed from its worker reporting ready until the last POST was answered (the
newest `finished_at` of the jobs; the time the last task recorded in Redis). The
phases swap order every round, to spread the drift of a shared machine over both;
the median ratio per delay is the figure. Target >= 1.0 at each delay.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_jobs, setup_django, timed_drain

MIN_JOBS = 2000
TOKEN = "bench-token"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=MIN_JOBS, help=f"per phase (at least {MIN_JOBS})")
    parser.add_argument("--delay-ms", type=int, nargs="+", default=[100, 500], help="upstream delays to run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="mrdj's prefork worker processes")
    parser.add_argument("--threads", type=int, default=64, help="raw Celery's thread pool")
    args = parser.parse_args()
    if args.jobs < MIN_JOBS:
        parser.error(f"--jobs must be at least {MIN_JOBS}")

    env = setup_django(QUEUE_REDIS_ENABLED="true", RENTGUY_API_TOKEN=TOKEN)
    import redis
    from django.conf import settings
    from django.db.models import Max

    from bench import upstream, worker_app
    from integrations import engine, handoff
    from integrations.models import Job, Status
    from integrations.queues import QUEUES
    from mrdj.config import get_config

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    folder = Path(env["MANAGED_ENV_PATH"]).parent
    limits = QUEUES["rentguy"].limits()
    print(
        f"mrdj: celery -A mrdj worker --pool prefork --concurrency {args.concurrency} (beat embedded), "
        f"acks late, prefetch multiplier {settings.CELERY_WORKER_PREFETCH_MULTIPLIER}; "
        f"QUEUE_WORKER_THREADS={engine.threads_per_queue()}, "
        f"QUEUE_RENTGUY_MAX_IN_FLIGHT={limits.max_in_flight}, "
        f"QUEUE_RENTGUY_RATE_PER_S={limits.rate_per_s:g}\n"
        f"raw Celery: celery -A bench.worker_app worker --pool threads --concurrency {args.threads} "
        f"{' '.join(worker_app.WORKER_DEFAULTS)} (beat embedded); bench.post acks_late="
        f"{worker_app.post.acks_late}, reject_on_worker_lost={worker_app.post.reject_on_worker_lost}\n"
        f"worker logs in {folder}",
        flush=True,
    )

    def run_mrdj(delay_ms: int, round_number: int) -> float:
        broker.flushdb()
        load_jobs(args.jobs)
        handoff.wake("rentguy")
        seconds = timed_drain(
            env,
            "mrdj",
            args.concurrency,
            folder / f"mrdj-{delay_ms}ms-{round_number}.log",
            lambda: Job.objects.filter(status=Status.DONE).count(),
            args.jobs,
            poll_seconds=0.1,
            last_finished=lambda: Job.objects.aggregate(last=Max("finished_at"))["last"].timestamp(),
        )
        left = Job.objects.exclude(status=Status.DONE).count()
        if left:
            raise SystemExit(f"{left} jobs not delivered")
        return seconds

    def run_raw(url: str, delay_ms: int, round_number: int) -> float:
        broker.flushdb()
        for n in range(args.jobs):
            worker_app.post.apply_async(
                (url, {"lead": n, "name": "Bruiloft Jansen", "guests": 120}, f"bench-{n}", TOKEN)
            )
        seconds = timed_drain(
            env,
            "bench.worker_app",
            args.threads,
            folder / f"raw-{delay_ms}ms-{round_number}.log",
            lambda: int(broker.get(worker_app.POST_DONE) or 0) + int(broker.get(worker_app.POST_FAILED) or 0),
            args.jobs,
            pool="threads",
            extra=worker_app.WORKER_DEFAULTS,
            poll_seconds=0.1,
            last_finished=lambda: float(broker.get(worker_app.POST_LAST)),
        )
        if broker.get(worker_app.POST_FAILED):
            raise SystemExit(f"{int(broker.get(worker_app.POST_FAILED))} raw POSTs were not answered 2xx")
        return seconds

    summary = []
    for delay_ms in args.delay_ms:
        ratios = []
        with upstream.running(delay=delay_ms / 1000) as url:
            get_config().store.update(
                {"RENTGUY_API_URL": url + "/leads", "SEVENSA_SUBMIT_URL": url + "/submit"}
            )
            for round_number in range(1, args.rounds + 1):
                if round_number % 2:
                    raw = run_raw(url + "/leads", delay_ms, round_number)
                    mrdj = run_mrdj(delay_ms, round_number)
                else:
                    mrdj = run_mrdj(delay_ms, round_number)
                    raw = run_raw(url + "/leads", delay_ms, round_number)
                raw_rate, mrdj_rate = args.jobs / raw, args.jobs / mrdj
                ratios.append(mrdj_rate / raw_rate)
                print(
                    f"{delay_ms} ms, round {round_number}: raw Celery {raw_rate:5.0f} tasks/s, "
                    f"mrdj {mrdj_rate:5.0f} jobs/s, ratio {ratios[-1]:.2f}",
                    flush=True,
                )
        summary.append(
            f"{args.jobs} jobs, upstream {delay_ms} ms: median ratio mrdj / raw Celery "
            f"{statistics.median(ratios):.2f} (target >= 1.0)"
        )
    print("\n".join(summary))


if __name__ == "__main__":
    main()

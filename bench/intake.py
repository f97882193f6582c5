"""Requests/s of POST /integrations/<queue>/jobs against a baseline view that answers 202 at once.

    .venv/bin/python bench/intake.py [--seconds 5] [--rounds 3]

Both are served by the same gunicorn (2 workers x 4 threads) on PostgreSQL with the
queue over Redis, as in production, and loaded by the same closed-loop client
(2 processes x 4 keep-alive connections). Rounds alternate; the median ratio is the
figure. Target >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import load
from bench.common import empty_queue_tables, gunicorn, setup_django

TOKEN = "bench-intake-token"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
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
    with gunicorn({**env, "DJANGO_SETTINGS_MODULE": "bench.settings"}, workers=2, threads=4) as port:
        body = json.dumps(
            {"payload": {"lead": "Bruiloft Jansen", "date": "2027-06-12", "guests": 120}}
        ).encode()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        load.run(port, "POST", "/bench/accepted", body, headers, seconds=1)  # warm both paths up
        load.run(port, "POST", "/integrations/rentguy/jobs", body, headers, seconds=1)
        ratios = []
        for round_number in range(1, args.rounds + 1):
            baseline, _ = load.run(port, "POST", "/bench/accepted", body, headers, seconds=args.seconds)
            before = Job.objects.count()
            intake, latencies = load.run(
                port, "POST", "/integrations/rentguy/jobs", body, headers, args.seconds
            )
            stored = Job.objects.count() - before
            ratios.append(intake / baseline)
            print(
                f"round {round_number}: baseline {baseline:6.0f} req/s, intake {intake:6.0f} req/s "
                f"({stored} jobs stored, median {statistics.median(latencies) * 1000:.1f} ms), "
                f"ratio {ratios[-1]:.2f}",
                flush=True,
            )
        print(f"median ratio intake / baseline {statistics.median(ratios):.2f} (target >= 0.5)")
    broker.flushdb()


if __name__ == "__main__":
    main()

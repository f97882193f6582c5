"""Seconds from a queue crossing a threshold to the webhook request arriving, Celery over Redis.

    .venv/bin/python bench/alert_latency.py [--crossings 20]

Production shape: gunicorn serving intake, one Celery worker (prefork, concurrency 2,
beat embedded), PostgreSQL, Redis, and a local receiver on 127.0.0.1 as the generic JSON
webhook and the upstream. One of these processes holds the evaluator lease; the others'
queue events reach it through PostgreSQL NOTIFY, so a crossing is often seen in another
process than the one where it happened.

- backlog: the job that takes rentguy (its upstream answering 503, so jobs wait to
  retry) to its warning limit is POSTed to intake; timed from just before the
  request to the webhook's arrival.
- dead-letter: a job POSTed for sevensa is refused upstream (400) and dead-lettered
  by the worker; timed from the job's finished_at to the webhook's arrival.
- baseline: in the same run, a job POSTed for sevensa with the upstream answering 200;
  timed from just before the request to the upstream receiving it: how fast the queue
  itself moves, the scale an alert can be compared with.

Each crossing starts from empty tables, so each is a new alert (no throttling).
Target: median under 1 s. Prometheus with Alertmanager at their defaults (1 m scrape,
1 m evaluation, 30 s group_wait) needs minutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import celery_worker, empty_queue_tables, gunicorn, setup_django

TOKEN = "bench-alert-token"
WARNING_BACKLOG = 5


class Receiver:
    """Webhook and upstream in one: records (wall-clock arrival, path, body)."""

    def __init__(self):
        self.arrivals: list[tuple[float, str, dict]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.time()
                status = {"/upstream/refuse": 400, "/upstream/busy": 503}.get(self.path, 200)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                with receiver.changed:
                    receiver.arrivals.append((arrived, self.path, json.loads(body or b"{}")))
                    receiver.changed.notify_all()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def first(self, path: str, after: int, matches=lambda body: True, timeout: float = 60) -> float:
        """Arrival time of the first request on path, among those after index after."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for arrived, seen, body in self.arrivals[after:]:
                    if seen == path and matches(body):
                        return arrived
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"nothing arrived on {path} within {timeout}s")
                self.changed.wait(left)


def post_job(port: int, queue: str, n: int) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/integrations/{queue}/jobs",
        data=json.dumps({"payload": {"n": n}}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    started = time.time()
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        assert response.status == 202, response.status
    return started


def reset() -> None:
    """Empty queue and alert tables, after letting evaluations already under way finish."""
    from django.db import connection

    from integrations.models import UpstreamState

    time.sleep(0.6)  # longer than ALERT_EVALUATE_MIN_INTERVAL_MS: no evaluation in flight
    empty_queue_tables()
    UpstreamState.objects.all().delete()  # no breaker or rate booking left from the round before
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE alerting_delivery, alerting_notification, alerting_dractivation_alerts, "
            "alerting_dractivation, alerting_throttlemark, alerting_alert RESTART IDENTITY CASCADE"
        )


def report(name: str, seconds: list[float]) -> float:
    median = statistics.median(seconds)
    print(
        f"{name:12} median {median * 1000:7.1f} ms   worst {max(seconds) * 1000:7.1f} ms   (n={len(seconds)})"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crossings", type=int, default=20)
    args = parser.parse_args()
    receiver = Receiver()
    env = setup_django(
        QUEUE_REDIS_ENABLED="true",
        INTEGRATIONS_API_TOKEN=TOKEN,
        RENTGUY_API_URL=receiver.url + "/upstream/busy",  # 503: its jobs wait to retry, backlog grows
        QUEUE_BREAKER_FAILURES="1000000",  # ...without the circuit opening (it would hold the queue)
        QUEUE_RETRY_BASE_MS="600000",
        SEVENSA_SUBMIT_URL=receiver.url + "/upstream/ok",
        ALERT_WEBHOOK_URLS=f"json+{receiver.url}/hook",
        ALERT_QUEUE_WARNING_BACKLOG=str(WARNING_BACKLOG),
        ALERT_QUEUE_CRITICAL_BACKLOG="1000",
        ALERT_QUEUE_DEAD_LETTER_WARNING="1",
    )
    import redis
    from django.conf import settings

    from integrations import operations
    from integrations.models import Job, Status
    from integrations.queues import QUEUES
    from mrdj.config import get_config

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    reset()
    store = get_config().store
    log_path = Path(env["MANAGED_ENV_PATH"]).with_name("worker.log")
    backlog, dead, baseline = [], [], []
    with celery_worker(env, "mrdj", 2, log_path), gunicorn(env, workers=1, threads=8) as port:
        for n in range(args.crossings + 1):  # the first of each is a warm-up, not counted
            store.set("SEVENSA_SUBMIT_URL", receiver.url + "/upstream/ok")
            mark = len(receiver.arrivals)
            sent = post_job(port, "sevensa", n)
            delivered = receiver.first("/upstream/ok", mark)
            reset()

            for k in range(WARNING_BACKLOG - 1):
                operations.enqueue(QUEUES["rentguy"], {"k": k})  # under the limit
            # Wait until none of these is in flight: backlog counts waiting jobs, not active ones.
            settled = time.monotonic() + 30
            while Job.objects.filter(queue="rentguy", status=Status.RETRY).count() < WARNING_BACKLOG - 1:
                if time.monotonic() > settled:
                    raise SystemExit("the jobs under the limit did not settle")
                time.sleep(0.01)
            mark = len(receiver.arrivals)
            crossed = post_job(port, "rentguy", n)
            alerted = receiver.first("/hook", mark, lambda body: body.get("kind") == "backlog")
            reset()

            store.set("SEVENSA_SUBMIT_URL", receiver.url + "/upstream/refuse")
            mark = len(receiver.arrivals)
            post_job(port, "sevensa", n)
            dead_alert = receiver.first("/hook", mark, lambda body: body.get("kind") == "dead_letter")
            died = Job.objects.get(queue="sevensa", status=Status.DEAD).finished_at.timestamp()
            reset()
            if n:
                baseline.append(delivered - sent)
                backlog.append(alerted - crossed)
                dead.append(dead_alert - died)
            print(
                f"crossing {n:2}: backlog {(alerted - crossed) * 1000:6.1f} ms, "
                f"dead-letter {(dead_alert - died) * 1000:6.1f} ms, "
                f"job delivery {(delivered - sent) * 1000:6.1f} ms",
                flush=True,
            )
    print()
    base = report("baseline", baseline)
    report("backlog", backlog)
    report("dead-letter", dead)
    overall = statistics.median(backlog + dead)
    print(
        f"median alert latency {overall * 1000:.1f} ms (target < 1000 ms); "
        f"ratio to one job's delivery through the queue {overall / base:.2f}"
    )
    broker.flushdb()


if __name__ == "__main__":
    main()

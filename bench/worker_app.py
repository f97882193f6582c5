"""The mrdj Celery app plus the baselines' tasks, so a baseline runs on the same app and broker.

bench.noop is what a Celery task costs when it does nothing (with Celery's default
acknowledgement, not mrdj's); bench.post makes the very POST a delivery makes
(urllib3, same JSON body and headers), for raw Celery against a slow upstream.
Both count themselves in Redis, so the bench knows when the last one ran.
"""

import json
import time

import redis
import urllib3
from django.conf import settings

from mrdj.celery import app
from mrdj.http import USER_AGENT

NOOP_DONE = "bench:noop:done"
POST_DONE = "bench:post:done"
POST_FAILED = "bench:post:failed"
POST_LAST = "bench:post:last"  # time.time() at which the latest POST was answered

_client = None
# As mrdj.http's pool: thread-safe, keep-alive, enough connections kept for every thread.
_http = urllib3.PoolManager(num_pools=32, maxsize=128, retries=False)


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL)
    return _client


# Both baselines run with Celery's own defaults, not mrdj's (CELERY_TASK_ACKS_LATE,
# CELERY_TASK_REJECT_ON_WORKER_LOST): a task is acknowledged when it starts. Run their
# worker with --prefetch-multiplier 4 (Celery's default; mrdj sets 1) for the rest.
CELERY_DEFAULTS = {"acks_late": False, "reject_on_worker_lost": False, "ignore_result": True}
WORKER_DEFAULTS = ("--prefetch-multiplier", "4")


@app.task(name="bench.noop", **CELERY_DEFAULTS)
def noop() -> None:
    """Does nothing but count itself."""
    _redis().incr(NOOP_DONE)


@app.task(name="bench.post", **CELERY_DEFAULTS)
def post(url: str, payload: dict, idempotency_key: str, token: str) -> None:
    """POST payload as JSON with the headers of a delivery; count it as done once answered 2xx."""
    try:
        answer = _http.request(
            "POST",
            url,
            body=json.dumps(payload).encode(),
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
                "Authorization": f"Bearer {token}",
            },
            timeout=urllib3.Timeout(connect=3.0, read=10.0),
            redirect=False,
        )
        counter = POST_DONE if 200 <= answer.status < 300 else POST_FAILED
    except urllib3.exceptions.HTTPError:
        counter = POST_FAILED
    _redis().pipeline(transaction=False).incr(counter).set(POST_LAST, repr(time.time())).execute()

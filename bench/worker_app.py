"""The mrdj Celery app plus a no-op task: the baseline runs on the very same worker."""

import redis
from django.conf import settings

from mrdj.celery import app

_client = None


@app.task(name="bench.noop", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def noop() -> None:
    """Does nothing but count itself, so the bench knows when the last one ran."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL)
    _client.incr("bench:noop:done")

"""Alerts raised where the work happens: in Celery worker processes, and by beat's tick."""

from __future__ import annotations

import pytest

from alerting.evaluator import evaluator
from alerting.models import Alert, Delivery
from integrations import operations
from integrations.queues import QUEUES
from tests.conftest import wait_until
from tests.receivers import Answer

pytestmark = pytest.mark.services


def test_a_job_dead_lettered_on_a_worker_alerts_at_once(celery_workers, managed_env, upstream, webhooks):
    managed_env.set("QUEUE_REDIS_ENABLED", "true")
    upstream.default = Answer(400, body=b'{"error": "lead refused"}')  # permanent: dead at once
    celery_workers()  # no beat: only the dead-letter event can raise the alert
    operations.enqueue(QUEUES["sevensa"], {"lead": 1})
    body = webhooks.wait_for(4, timeout=60)
    generic = next(r.json() for r in body if r.path == "/json")
    assert generic["message"] == "Job moved to dead-letter queue: 1 job, 1 in dead-letter now"
    assert generic["queue"] == "sevensa"
    wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.SENT).count() == 4)


def test_beat_ticks_raise_an_alert_no_queue_event_announced(celery_workers, managed_env, webhooks):
    managed_env.update(
        {"QUEUE_REDIS_ENABLED": "true", "FLAG_RENTGUY_INTEGRATION": "off", "ALERT_QUEUE_WARNING_BACKLOG": "2"}
    )
    for n in range(2):  # held while the flag is off; enqueued here, where nothing evaluates
        operations.enqueue(QUEUES["rentguy"], {"n": n})
    assert not Alert.objects.exists()
    celery_workers(beat=True)
    webhooks.wait_for(4, timeout=60)
    assert Alert.objects.get().kind == "backlog"


def test_the_evaluator_thread_alerts_on_queue_events(webhooks, managed_env):
    managed_env.set("ALERT_QUEUE_WARNING_BACKLOG", "3")
    evaluator.start()  # as in a web process: intake events wake it
    try:
        for n in range(3):
            operations.enqueue(QUEUES["rentguy"], {"n": n})
        webhooks.wait_for(4, timeout=30)
    finally:
        evaluator.stop()
    assert Alert.objects.get().payload["figures"]["backlog"] == 3


def test_with_the_queue_in_process_the_evaluator_ticks_by_itself(webhooks, managed_env):
    managed_env.update({"ALERT_QUEUE_WARNING_BACKLOG": "2", "ALERT_EVALUATE_INTERVAL_MS": "200"})
    for n in range(2):  # before the evaluator runs: no event reaches it, only its tick can
        operations.enqueue(QUEUES["rentguy"], {"n": n})
    webhooks.script(Answer(500))  # the first delivery to fail is retried by a later tick
    evaluator.start()
    try:
        wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.SENT).count() == 4, timeout=30)
    finally:
        evaluator.stop()
    assert len(webhooks.received) == 5

"""Periodic tasks keep their outcome in django-celery-results; drains keep nothing."""

from __future__ import annotations

import json

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.services


def test_periodic_tasks_store_their_results_and_drains_do_not(celery_workers, broker, tmp_path):
    from django_celery_beat.models import PeriodicTask
    from django_celery_results.models import TaskResult

    from mrdj.celery import app

    reconcile = app.send_task("integrations.reconcile")
    tick = app.send_task("alerting.tick")
    drain = app.send_task("integrations.drain", args=["rentguy"])
    celery_workers(beat=True)

    def stored(task_id: str) -> TaskResult | None:
        return TaskResult.objects.filter(task_id=task_id, status="SUCCESS").first()

    for sent, name, keys in (
        (reconcile, "integrations.reconcile", {"released", "woken"}),
        (tick, "alerting.tick", {"notifications"}),
    ):
        row = wait_until(lambda sent=sent: stored(sent.id), timeout=60, message=f"no result for {name}")
        assert row.task_name == name  # CELERY_RESULT_EXTENDED: the admin shows what ran
        assert row.content_type == "application/json"
        assert set(json.loads(row.result)) == keys

    log = tmp_path / "worker.log"
    wait_until(lambda: f"integrations.drain[{drain.id}] succeeded" in log.read_text(), timeout=60)
    assert not TaskResult.objects.filter(task_id=drain.id).exists()
    assert not TaskResult.objects.filter(task_name="integrations.drain").exists()
    # Beat schedules Celery's own clean-up of expired results (CELERY_RESULT_EXPIRES).
    cleanup = wait_until(lambda: PeriodicTask.objects.filter(task="celery.backend_cleanup").first())
    assert cleanup.enabled

"""mrdj.processes: one row per process, written by the job consumers' heartbeat and by telemetry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations import heartbeat
from mrdj import processes
from mrdj.models import Process

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


def test_it_keeps_one_row_per_process_that_both_sides_write():
    me = processes.own_name()
    processes.telemetry_started("web")
    heartbeat.record("in-process")
    processes.exported()

    process = Process.objects.get()
    assert (process.name, process.role, process.consumes) == (me, "web", "in-process")
    assert process.started_at <= process.last_export_at and process.seen_at is not None

    processes.telemetry_started("web")  # switched off and on again: counts from the new start
    process.refresh_from_db()
    assert process.last_export_at is None and process.consumes == "in-process"


def test_alive_lists_consumers_seen_lately_of_the_kind_asked():
    now = timezone.now()
    Process.objects.create(name="web-1:1", role="web", consumes="in-process", seen_at=now)
    Process.objects.create(name="worker-1:2", role="worker", consumes="celery", seen_at=now)
    Process.objects.create(name="worker-1:3", role="worker", consumes="celery", seen_at=now - HOUR)
    Process.objects.create(name="beat-1:4", role="beat", seen_at=now, started_at=now)  # telemetry only

    assert {p.name for p in processes.alive(timedelta(seconds=20))} == {"web-1:1", "worker-1:2"}
    assert [p.name for p in heartbeat.alive("celery")] == ["worker-1:2"]
    assert processes.last_seen("celery") == now
    assert processes.last_seen("in-process") == now


@pytest.mark.django_db(transaction=True)  # the worker's shutdown closes the connections
def test_a_worker_beats_under_its_name_and_is_forgotten_when_it_stops():
    heartbeat.record("celery")
    [worker] = heartbeat.alive()
    assert (worker.name, worker.role, worker.consumes) == (processes.own_name(), "worker", "celery")

    heartbeat.on_worker_shutdown()

    assert heartbeat.alive() == [] and not Process.objects.exists()


def test_prune_forgets_only_processes_without_a_recent_sign_of_life():
    now = timezone.now()
    old = now - 2 * processes.GONE_AFTER
    Process.objects.create(name="gone:1", role="worker", consumes="celery", seen_at=old)
    Process.objects.create(name="gone:2", role="beat", seen_at=old, started_at=old, last_export_at=old)
    Process.objects.create(name="beating:3", role="worker", consumes="celery", seen_at=now)
    Process.objects.create(name="exporting:4", role="beat", seen_at=old, started_at=old, last_export_at=now)
    Process.objects.create(name="starting:5", role="worker", seen_at=old, started_at=now)

    assert heartbeat.forget_old() == 2

    assert set(Process.objects.values_list("name", flat=True)) == {"beating:3", "exporting:4", "starting:5"}


def test_silence_counts_from_the_newest_export_or_a_start_yet_to_export():
    now = timezone.now()
    assert processes.newest_export_or_start() is None and processes.last_export() is None

    Process.objects.create(name="worker-1:2", role="worker", consumes="celery", seen_at=now)  # no telemetry
    assert processes.newest_export_or_start() is None

    Process.objects.create(name="web-1:1", role="web", seen_at=now, started_at=now - HOUR, last_export_at=now)
    Process.objects.create(name="beat-1:3", role="beat", seen_at=now, started_at=now - 2 * HOUR)
    assert processes.newest_export_or_start() == now and processes.last_export() == now

    Process.objects.filter(name="web-1:1").update(last_export_at=now - 3 * HOUR)
    assert processes.newest_export_or_start() == now - 2 * HOUR
    assert processes.last_export() == now - 3 * HOUR

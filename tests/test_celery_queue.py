"""The queues on real Celery workers over Redis, including crashes and a Redis that forgets."""

from __future__ import annotations

from collections import Counter

import pytest

from integrations import operations
from integrations.fallback import InProcessWorker
from integrations.models import Job, Status
from integrations.queues import QUEUES
from tests.conftest import wait_until
from tests.receivers import Answer

pytestmark = pytest.mark.services


def delivered_count() -> int:
    return Job.objects.filter(status=Status.DONE).count()


def test_jobs_flow_through_a_celery_worker(celery_workers, managed_env, upstream):
    managed_env.set("QUEUE_REDIS_ENABLED", "true")
    upstream.script(Answer(503))
    celery_workers(beat=True)

    jobs = [operations.enqueue(QUEUES[name], {"n": n})[0] for n in range(5) for name in QUEUES]
    # The retry waits in the database; beat's reconciler hands it on when due.
    wait_until(lambda: delivered_count() == len(jobs), timeout=60)

    assert len(upstream.received) == 11
    assert {r.path for r in upstream.received} == {"/rentguy/leads", "/sevensa/submit"}


def test_switching_queue_redis_enabled_mid_run_loses_nothing(celery_workers, managed_env, upstream):
    managed_env.set("QUEUE_REDIS_ENABLED", "true")
    upstream.default = Answer(200, delay=0.02)
    worker = celery_workers()
    first = [operations.enqueue(QUEUES["rentguy"], {"n": n})[0] for n in range(40)]
    wait_until(lambda: delivered_count() >= 5)

    # Redis incident: the playbook's switch to the in-process fallback, and the workers go away.
    managed_env.set("QUEUE_REDIS_ENABLED", "false")
    worker.kill()
    fallback = InProcessWorker(poll_seconds=0.05, claims_every_seconds=0.2)
    fallback.start()
    try:
        second = [operations.enqueue(QUEUES["rentguy"], {"n": 100 + n})[0] for n in range(20)]
        managed_env.set("QUEUE_LEASE_MS", "1000")  # what the dead worker held comes back quickly
        wait_until(lambda: delivered_count() == 60, timeout=60, message="not all delivered on the fallback")
        # ...and back to Redis: new jobs run on a new worker again.
        managed_env.set("QUEUE_REDIS_ENABLED", "true")
    finally:
        fallback.stop()
    celery_workers(beat=True)  # the mark of the drainer killed above may still hold: beat rescues
    third = [operations.enqueue(QUEUES["rentguy"], {"n": 200 + n})[0] for n in range(10)]
    wait_until(lambda: delivered_count() == 70, timeout=60)

    assert Job.objects.count() == len(first) + len(second) + len(third)
    delivered = Counter(r.json()["n"] for r in upstream.received)
    assert set(delivered) == {job.payload["n"] for job in first + second + third}


def test_chaos_500_jobs_survive_a_killed_worker_and_an_emptied_redis(
    celery_workers, managed_env, upstream, broker
):
    managed_env.update({"QUEUE_REDIS_ENABLED": "true", "QUEUE_LEASE_MS": "2000"})
    upstream.default = Answer(200, delay=0.005)
    worker = celery_workers(concurrency=4)
    for n in range(500):
        operations.enqueue(QUEUES["rentguy" if n % 2 else "sevensa"], {"n": n})

    wait_until(lambda: delivered_count() >= 250, timeout=120)
    worker.kill()  # kill -9, pool children included
    broker.flushdb()  # Redis comes back empty: every queued task is gone
    # No operator action: beat's reconciler releases dead claims and re-sends what Redis forgot.
    celery_workers(concurrency=4, beat=True)
    wait_until(lambda: delivered_count() == 500, timeout=180, interval=0.2)

    delivered = Counter(r.json()["n"] for r in upstream.received)
    assert set(delivered) == set(range(500)), "every job reached the upstream"
    duplicates = {n: c for n, c in delivered.items() if c > 1}
    print(f"chaos: 500 jobs, {len(upstream.received)} deliveries, {len(duplicates)} delivered more than once")
    # A duplicate carries the job's Idempotency-Key both times, so the upstream can drop it.
    keys = {}
    for request in upstream.received:
        keys.setdefault(request.json()["n"], set()).add(request.headers["Idempotency-Key"])
    assert all(len(k) == 1 for k in keys.values())
    assert operations.recount() == {name: {"pending": 0, "retry": 0, "dead": 0} for name in QUEUES}, (
        "no job left waiting or dead"
    )


ACCEPT_WHILE_REDIS_IS_DOWN = """
import django
django.setup()
from integrations import operations
from integrations.queues import QUEUES
job, created = operations.enqueue(QUEUES["rentguy"], {"lead": "while Redis is down"})
print(job.pk, created)
"""


def test_intake_while_redis_is_down_stores_the_job_for_the_reconciler(
    celery_workers, managed_env, upstream, closed_port
):
    from tests.conftest import database_url, run_python

    managed_env.set("QUEUE_REDIS_ENABLED", "true")
    result = run_python(
        ACCEPT_WHILE_REDIS_IS_DOWN,
        DJANGO_SETTINGS_MODULE="mrdj.settings",
        MANAGED_ENV_PATH=managed_env.path,
        DATABASE_URL=database_url(),
        REDIS_URL=f"redis://127.0.0.1:{closed_port}/0",
    )
    assert result.returncode == 0, result.stderr
    assert "broker refused the wake-up of rentguy" in result.stderr
    job = Job.objects.get(pk=int(result.stdout.split()[0]))
    assert job.status == Status.PENDING  # stored: the database is the truth, whatever the broker says

    # Redis is back: beat's reconciler hands it on and a worker delivers it.
    celery_workers(beat=True)
    wait_until(lambda: delivered_count() == 1, timeout=60)
    assert upstream.received[0].json() == {"lead": "while Redis is down"}


def test_two_worker_processes_share_the_upstream_limits(celery_workers, managed_env, upstream, broker):
    from mrdj.celery import app

    managed_env.update({"QUEUE_REDIS_ENABLED": "true", "QUEUE_RENTGUY_MAX_IN_FLIGHT": "3"})
    upstream.default = Answer(200, delay=0.05)
    celery_workers(concurrency=2)
    celery_workers(concurrency=2)
    for n in range(60):
        operations.enqueue(QUEUES["rentguy"], {"n": n})
    for _ in range(4):  # more drainers than the one intake wakes: every pool process claims
        app.send_task("integrations.drain", ("rentguy",))

    wait_until(lambda: delivered_count() == 60, timeout=60)

    assert upstream.peak_in_flight <= 3
    assert len({r.json()["n"] for r in upstream.received}) == 60


def test_a_worker_killed_in_the_middle_of_a_batch_loses_nothing(celery_workers, managed_env, upstream):
    managed_env.update({"QUEUE_REDIS_ENABLED": "true", "QUEUE_LEASE_MS": "1000"})
    upstream.default = Answer(200, delay=0.3)
    worker = celery_workers(concurrency=1)
    for n in range(100):
        operations.enqueue(QUEUES["sevensa"], {"n": n})
    upstream.wait_for(10)  # a batch is in flight

    worker.kill()  # kill -9: its claims stay until their lease runs out
    in_flight = Job.objects.filter(status=Status.ACTIVE).count()
    assert in_flight > 0
    celery_workers(concurrency=2, beat=True)

    wait_until(lambda: delivered_count() == 100, timeout=120, interval=0.2)
    delivered = Counter(r.json()["n"] for r in upstream.received)
    assert set(delivered) == set(range(100))
    assert operations.recount()["sevensa"] == {"pending": 0, "retry": 0, "dead": 0}


def test_a_replay_of_many_jobs_puts_one_message_on_the_broker(transactional_db, broker, managed_env):
    from tests.support import put_jobs

    managed_env.set("QUEUE_REDIS_ENABLED", "true")
    put_jobs("rentguy", Status.DEAD, 2000)

    assert operations.replay(QUEUES["rentguy"], actor="test") == 2000
    for n in range(50):  # intake meanwhile: the drain already asked for covers these too
        operations.enqueue(QUEUES["rentguy"], {"n": n})

    assert broker.llen("drain") == 1
    assert Job.objects.filter(status=Status.PENDING).count() == 2050


def test_a_worker_whose_database_connections_were_killed_carries_on(celery_workers, managed_env, upstream):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("terminates PostgreSQL backends")
    managed_env.set("QUEUE_REDIS_ENABLED", "true")
    celery_workers(concurrency=1)
    for n in range(5):
        operations.enqueue(QUEUES["rentguy"], {"n": n})
    wait_until(lambda: delivered_count() == 5, timeout=60)

    with connection.cursor() as cursor:  # every connection to the test database but this one
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    for n in range(5, 10):
        operations.enqueue(QUEUES["rentguy"], {"n": n})

    wait_until(lambda: delivered_count() == 10, timeout=60, message="the worker kept its dead connection")


def test_periodic_work_has_its_own_queue_and_workers_send_task_events(
    celery_workers, broker, managed_env, tmp_path
):
    """Flower sees tasks waiting (the producer's task-sent events) and what workers do; the
    reconciler and the alert tick never wait behind other tasks."""
    from mrdj.celery import app

    for task in ("integrations.reconcile", "alerting.tick", "alerting.deadman_ping"):
        app.send_task(task)
    app.send_task("integrations.drain", args=["rentguy"])
    assert (broker.llen("periodic"), broker.llen("drain"), broker.llen("celery")) == (3, 1, 0)
    assert app.conf.task_send_sent_event and app.conf.timezone == "UTC"

    celery_workers()
    banner = (tmp_path / "worker.log").read_text()
    assert "task events: ON" in banner
    assert all(f".> {queue} " in banner for queue in ("periodic", "drain", "celery"))  # it consumes all three
    wait_until(lambda: broker.llen("periodic") == 0, message="the worker took the periodic tasks")

"""One alert evaluator per deployment: the lease, its take-over, and the cross-process wake."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerting import evaluator as evaluators
from alerting.evaluator import DUTY, LEASE, ensure_lease, release_lease, take_lease
from alerting.models import Alert, EvaluatorLease
from tests.conftest import database_url, gunicorn, run_python, wait_until

pytestmark = pytest.mark.services


def holder_pid() -> int | None:
    lease = EvaluatorLease.objects.filter(name=DUTY, held_until__gt=timezone.now()).first()
    return int(lease.holder.rsplit(":", 1)[1]) if lease and lease.holder else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_one_holder_at_a_time_taken_over_once_it_ran_out(db):
    assert not take_lease("web-1:10")  # no row yet: the evaluator thread creates it first
    ensure_lease()
    ensure_lease()
    assert take_lease("web-1:10")
    assert take_lease("web-1:10")  # renewed by its holder
    assert not take_lease("web-2:20")
    EvaluatorLease.objects.filter(name=DUTY).update(held_until=timezone.now() - timedelta(milliseconds=1))
    assert take_lease("web-2:20")
    assert not take_lease("web-1:10")
    release_lease("web-1:10")  # not the holder: changes nothing
    assert not take_lease("web-1:10")
    release_lease("web-2:20")  # a clean stop frees it at once
    assert take_lease("web-1:10")
    held = EvaluatorLease.objects.get(name=DUTY)
    assert held.holder == "web-1:10"
    assert timedelta(0) < held.held_until - timezone.now() <= LEASE


def test_of_three_web_workers_one_evaluates_and_another_takes_over_when_it_dies(
    transactional_db, managed_env, tmp_path
):
    with gunicorn(managed_env, tmp_path / "web.log", workers=3):
        wait_until(lambda: holder_pid() is not None, timeout=30, message="no web worker took the lease")
        first = holder_pid()
        deadline = time.monotonic() + 2 * evaluators.RENEW_SECONDS + 1
        while time.monotonic() < deadline:  # renewed by its holder, never taken by the others
            assert holder_pid() == first
            time.sleep(0.2)
        os.kill(first, signal.SIGKILL)  # gunicorn starts a new worker; the lease must move
        limit = (LEASE.total_seconds() + 2 * evaluators.RENEW_SECONDS) * 2
        wait_until(
            lambda: holder_pid() not in (None, first), timeout=limit, message="nobody took the lease over"
        )
        assert alive(holder_pid())


ANNOUNCER = """
import django, os, time
os.environ["DJANGO_SETTINGS_MODULE"] = "mrdj.settings"
django.setup()
from alerting.evaluator import evaluator
from integrations import operations
from integrations.queues import QUEUES
evaluator.start()  # a candidate: the test process holds the lease
for n in range(3):
    operations.enqueue(QUEUES["rentguy"], {"n": n})
deadline = time.monotonic() + 20
while evaluator._pending.is_set() and time.monotonic() < deadline:
    time.sleep(0.01)
evaluator.stop()
print("holding" if evaluator.holding else "announced")
"""


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the cross-process wake is PostgreSQL's NOTIFY")
def test_a_queue_event_in_another_process_wakes_the_holder_at_once(transactional_db, webhooks, managed_env):
    managed_env.update(
        {
            "ALERT_QUEUE_WARNING_BACKLOG": "3",
            "FLAG_RENTGUY_INTEGRATION": "off",  # the jobs stay in the backlog
            "ALERT_EVALUATE_INTERVAL_MS": "600000",  # only a wake can explain an alert in time
        }
    )
    holder = evaluators.evaluator
    holder.start()
    try:
        wait_until(
            lambda: holder.holding and holder.evaluations >= 1, message="this process did not take the lease"
        )
        done = run_python(ANNOUNCER, MANAGED_ENV_PATH=str(managed_env.path), DATABASE_URL=database_url())
        assert done.stdout.strip() == "announced", done.stderr[-2000:]
        webhooks.wait_for(4, timeout=20)
        assert holder.evaluations >= 2  # its first, then those the other process asked for
    finally:
        holder.stop()
    alert = Alert.objects.get()
    assert (alert.kind, alert.payload["figures"]["backlog"]) == ("backlog", 3)


def test_a_failure_is_logged_once_until_it_works_again(caplog):
    answers = [RuntimeError("database down"), RuntimeError("database down"), "taken"]

    def take_lease(holder):  # named as the real one, whose failure the log names
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    candidate = evaluators.Evaluator()
    with caplog.at_level("WARNING", logger="alerting.evaluator"):
        assert candidate._quietly(take_lease, "web-1:10") is None
        assert candidate._quietly(take_lease, "web-1:10") is None
        assert candidate._quietly(take_lease, "web-1:10") == "taken"
    assert [record.getMessage() for record in caplog.records] == [
        "alert evaluator: take_lease failed; trying again at the next event or tick",
        "alert evaluator: take_lease works again",
    ]
    assert caplog.records[0].exc_info[1].args == ("database down",)

"""The queues' history for the charts: sampled once per period for the whole deployment,
counted from the tries in between, downsampled and pruned with age, served as JSON with the
alerts and operator actions on its time axis. Time is passed in, never waited for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from alerting.models import Alert
from integrations import history, operations
from integrations.models import Attempt, Job, QueueSample, Status
from integrations.queues import QUEUES
from mrdj import audit
from tests.conftest import TOKENS
from tests.support import put_jobs, staff

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 3, 9, 0, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_memo():
    history._checked.clear()
    yield
    history._checked.clear()


def tried(outcome: str, accepted: datetime, started: datetime, took_ms: int = 100) -> None:
    job = Job.objects.create(
        queue="rentguy", payload={}, idempotency_key=f"k{Job.objects.count()}", status=outcome,
        created_at=accepted, next_attempt_at=accepted,
    )  # fmt: skip
    Attempt.objects.create(job=job, number=1, started_at=started, duration_ms=took_ms, outcome=outcome)


def minute_rows(queue: str = "rentguy") -> list[QueueSample]:
    return list(QueueSample.objects.filter(queue=queue, resolution_s=60).order_by("at"))


def test_each_minute_is_sampled_once_with_the_tries_since_the_last_sample():
    put_jobs("rentguy", Status.RETRY, 2)
    assert history.sample_if_due(T0) == 2 * len(QUEUES)  # the minute and the ten minutes before
    history._checked.clear()  # another process, same minute: nothing more
    assert history.sample_if_due(T0 + timedelta(seconds=20)) == 0

    for seconds in (1, 2, 4, 8):  # accepted 1..8 s before delivered
        tried(Status.DONE, T0 - timedelta(seconds=seconds), T0, took_ms=0)
    tried(Status.RETRY, T0, T0)
    history.sample_if_due(T0 + timedelta(minutes=1))

    first, second = minute_rows()
    assert (first.at, second.at) == (
        datetime(2026, 12, 3, 8, 59, tzinfo=UTC),
        datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
    )
    assert (first.backlog, first.retrying, first.delivered) == (2, 2, 0)
    assert (second.delivered, second.failed) == (4, 1)
    assert (second.latency_p50_ms, second.latency_p95_ms) == (3000, 7400)
    assert minute_rows("sevensa")[1].delivered == 0


def test_history_is_downsampled_and_pruned_with_age():
    history.sample_if_due(T0)
    for minutes in range(1, 26 * 60, 7):  # a process ticking now and then for 26 hours
        history.sample_if_due(last := T0 + timedelta(minutes=minutes))
    minutes = minute_rows()
    tens = QueueSample.objects.filter(queue="rentguy", resolution_s=600)

    assert minutes[0].at >= last - timedelta(hours=25) > T0  # older than 25 h: gone
    assert all(row.at.minute % 10 == 0 for row in tens) and tens.count() > 24 * 6
    assert QueueSample.objects.count() <= len(QUEUES) * (25 * 60 + 8 * 24 * 6)


def test_history_json_serves_columns_and_marks_for_staff_and_the_metrics_token(managed_env):
    managed_env.update(TOKENS)
    now = datetime.now(UTC)
    history.sample_if_due(now - timedelta(minutes=2))
    history.sample_if_due(now - timedelta(minutes=1))
    Alert.objects.create(
        key="rentguy:backlog", queue="rentguy", kind="backlog", severity="warning",
        started_at=now - timedelta(minutes=5), resolved_at=now - timedelta(minutes=1), state="resolved",
    )  # fmt: skip
    operations.flush(QUEUES["rentguy"], "cli:test")
    audit.record("queue.flush", actor="cli:test", target="sevensa")  # another queue: not marked

    bearer = Client().get(
        "/dashboard/queues/rentguy/history.json?range=1h",
        HTTP_AUTHORIZATION=f"Bearer {TOKENS['METRICS_API_TOKEN']}",
    )
    client = Client()
    client.force_login(staff())
    body = client.get("/dashboard/queues/rentguy/history.json").json()

    assert bearer.status_code == 200 and bearer.json()["series"] == body["series"]
    assert body["range"] == "1h" and body["resolution_s"] == 60
    assert len(body["series"]["t"]) == 2 and body["series"]["backlog"] == [0, 0]
    kinds = [(mark["kind"], mark["text"]) for mark in body["marks"]]
    assert ("fired", "alert fired: backlog rentguy (warning)") in kinds
    assert ("resolved", "alert resolved: backlog rentguy") in kinds
    assert ("action", "queue.flush rentguy by cli:test") in kinds and len(kinds) == 3


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/dashboard/queues/rentguy/history.json?range=2d", 400, "range: '2d' is not one of 1h, 24h, 7d"),
        ("/dashboard/queues/nope/history.json", 404, "unknown queue 'nope'"),
    ],
)
def test_history_json_names_what_is_wrong(path, status, says):
    client = Client()
    client.force_login(staff())
    answer = client.get(path)
    assert (answer.status_code, answer.json()["error"][: len(says)]) == (status, says)


def test_history_json_needs_staff_or_a_token(managed_env):
    managed_env.update(TOKENS)
    assert Client().get("/dashboard/queues/rentguy/history.json").status_code == 401
    wrong = Client().get("/dashboard/queues/rentguy/history.json", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401

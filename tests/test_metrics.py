from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from integrations import operations
from integrations.models import Job, QueueCounter, Status
from integrations.queues import QUEUES
from tests.conftest import TOKENS
from tests.support import claim

pytestmark = pytest.mark.django_db
FIELDS = {"backlog", "active", "retry_age_ms", "dead_letter", "oldest_pending_age_ms", "enabled"}
UPSTREAM_FIELDS = {
    "circuit",
    "circuit_since",
    "paused_until",
    "in_flight_limit",
    "rate_limit_per_s",
    "last_error",
    "last_error_at",
}
QUIET_UPSTREAM = {
    "circuit": "closed",
    "circuit_since": None,
    "paused_until": None,
    "in_flight_limit": 64,
    "rate_limit_per_s": 0,
    "last_error": "",
    "last_error_at": None,
}


@pytest.fixture
def staged(managed_env):
    """Jobs in every state, with known ages, made through the operations."""
    managed_env.update(TOKENS)
    now = timezone.now()
    rentguy = QUEUES["rentguy"]
    jobs = [operations.enqueue(rentguy, {"n": n})[0] for n in range(6)]
    # two delivered, one in flight, one waiting to retry for 90 s, one dead, one still pending
    assert {job.pk for job in claim("rentguy", 5)} == {job.pk for job in jobs[:5]}
    Job.objects.filter(pk__in=[jobs[0].pk, jobs[1].pk]).update(status=Status.DONE)
    Job.objects.filter(pk=jobs[3].pk).update(status=Status.RETRY, created_at=now - timedelta(seconds=90))
    Job.objects.filter(pk=jobs[4].pk).update(status=Status.DEAD)
    Job.objects.filter(pk=jobs[5].pk).update(created_at=now - timedelta(seconds=30))
    operations.recount()
    return jobs


def test_it_reports_each_queue_from_counters_and_indexes(staged):
    figures = operations.queue_figures()

    rentguy = figures["queues"]["rentguy"]
    assert set(rentguy) == FIELDS | UPSTREAM_FIELDS
    assert (rentguy["backlog"], rentguy["active"], rentguy["dead_letter"], rentguy["enabled"]) == (
        2,
        1,
        1,
        True,
    )
    assert 90_000 <= rentguy["retry_age_ms"] < 100_000
    assert 90_000 <= rentguy["oldest_pending_age_ms"] < 100_000
    assert figures["queues"]["sevensa"] == {
        "backlog": 0,
        "active": 0,
        "retry_age_ms": 0,
        "dead_letter": 0,
        "oldest_pending_age_ms": 0,
        "enabled": True,
        **QUIET_UPSTREAM,
    }
    assert figures["queue_mode"] == "in-process"
    assert figures["generated_at"].endswith("Z")


def test_counters_kept_by_the_transitions_match_a_recount(managed_env):
    rentguy = QUEUES["rentguy"]
    for n in range(4):
        operations.enqueue(rentguy, {"n": n})
    claim("rentguy", 1)

    kept = {(c.queue, c.status): c.count for c in QueueCounter.objects.all() if c.count}
    recounted = operations.recount()

    assert kept == {("rentguy", "pending"): 3}
    assert recounted["rentguy"] == {"pending": 3, "retry": 0, "dead": 0}


@pytest.mark.parametrize("token", ["METRICS_API_TOKEN", "OPS_API_TOKEN"])
def test_the_endpoint_takes_the_metrics_or_ops_token(client, staged, token):
    response = client.get("/metrics/queues", HTTP_AUTHORIZATION=f"Bearer {TOKENS[token]}")

    assert response.status_code == 200
    assert response.json()["queues"]["rentguy"]["backlog"] == 2
    assert response["Cache-Control"] == "no-store"


def test_the_endpoint_takes_a_staff_session(client, staged):
    client.force_login(User.objects.create_user("ops", is_staff=True))

    assert client.get("/metrics/queues").json()["queues"]["rentguy"]["dead_letter"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer nope"},
        {"HTTP_AUTHORIZATION": f"Bearer {TOKENS['INTEGRATIONS_API_TOKEN']}"},
    ],
)
def test_the_endpoint_refuses_anyone_else(client, staged, headers):
    response = client.get("/metrics/queues", **headers)

    assert response.status_code == 401
    assert "queues" not in response.json()


def test_a_logged_in_non_staff_user_is_refused(client, staged):
    client.force_login(User.objects.create_user("dj"))

    assert client.get("/metrics/queues").status_code == 401


def test_it_counts_no_job_rows(staged, django_assert_max_num_queries):
    """Seven lookups at most, whatever the table holds: no COUNT over jobs but the in-flight ones
    (counters, in flight, two ages per queue, the upstream states)."""
    with django_assert_max_num_queries(7):
        operations.queue_figures()

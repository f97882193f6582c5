"""A queue's Jobs page and a job's page: filters, search, causes of dead-letter and replay."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from integrations.models import Attempt, Job, Status
from mrdj.models import AuditEvent
from tests.support import csrf_client, staff

pytestmark = pytest.mark.django_db


def job(status: str, error: str = "", key: str | None = None, **payload) -> Job:
    now = timezone.now()
    return Job.objects.create(
        queue="rentguy",
        status=status,
        payload=payload or {"lead": "x"},
        idempotency_key=key or uuid.uuid4().hex,
        created_at=now,
        next_attempt_at=now,
        finished_at=now if status in (Status.DEAD, Status.DONE) else None,
        last_error=error,
        attempts=3 if status == Status.DEAD else 0,
    )


@pytest.fixture
def jobs():
    return {
        "a": job(Status.DEAD, "HTTP 500 Internal Server Error", key="booking-1", name="Bruiloft Jansen"),
        "b": job(Status.DEAD, "HTTP 500 Internal Server Error", name="Feest Pietersen"),
        "c": job(Status.DEAD, "RENTGUY_API_URL is not set"),
        "d": job(Status.PENDING, name="Bruiloft de Vries"),
        "e": job(Status.DONE),
    }


def listed(client: Client, query: str = "") -> list[int]:
    page = client.get(f"/dashboard/queues/rentguy/jobs{query}")
    assert page.status_code == 200
    return [int(row.split('"')[0]) for row in page.content.decode().split('data-job="')[1:]]


def test_jobs_are_filtered_by_state_cause_and_searched_by_key_or_payload_text(jobs):
    client = Client()
    client.force_login(staff())

    assert listed(client) == [j.pk for j in reversed(jobs.values())]
    assert listed(client, "?state=dead") == [jobs["c"].pk, jobs["b"].pk, jobs["a"].pk]
    assert listed(client, "?state=dead&cause=HTTP+500+Internal+Server+Error") == [jobs["b"].pk, jobs["a"].pk]
    assert listed(client, "?q=booking-1") == [jobs["a"].pk]
    assert listed(client, "?q=bruiloft") == [jobs["d"].pk, jobs["a"].pk]
    assert listed(client, "?state=bogus") == [j.pk for j in reversed(jobs.values())]  # named, not applied
    assert (
        "state: &#x27;bogus&#x27; is not one of"
        in client.get("/dashboard/queues/rentguy/jobs?state=bogus").content.decode()
    )
    assert client.get("/dashboard/queues/nope/jobs").status_code == 404


def test_the_page_after_is_found_by_id_without_counting(jobs, monkeypatch):
    from dashboard import job_pages

    monkeypatch.setattr(job_pages, "PAGE_SIZE", 2)
    client = Client()
    client.force_login(staff())

    first = client.get("/dashboard/queues/rentguy/jobs?state=dead").content.decode()
    assert f"before={jobs['b'].pk}" in first and "state=dead" in first.split('rel="next"')[1]
    assert listed(client, f"?state=dead&before={jobs['b'].pk}") == [jobs["a"].pk]


def test_dead_letter_is_grouped_by_cause_and_a_cause_replayed_at_once(jobs):
    client, token = csrf_client(staff("replay_job"))
    page = client.get("/dashboard/queues/rentguy/jobs").content.decode()
    causes = page.split('id="causes"')[1].split("</table>")[0]
    assert causes.index("HTTP 500 Internal Server Error") < causes.index("RENTGUY_API_URL is not set")
    assert "<td>2</td>" in causes

    response = client.post(
        "/dashboard/queues/rentguy/causes/replay",
        {"csrfmiddlewaretoken": token, "cause": "HTTP 500 Internal Server Error"},
    )

    assert response.status_code == 302
    assert set(Job.objects.filter(status=Status.PENDING).values_list("pk", flat=True)) == {
        jobs["a"].pk, jobs["b"].pk, jobs["d"].pk
    }  # fmt: skip
    assert Job.objects.get(pk=jobs["c"].pk).status == Status.DEAD
    assert AuditEvent.objects.filter(action="deadletter.replay").exists()


def test_a_job_page_shows_its_tries_in_order_and_replays_that_job_alone(jobs):
    dead = jobs["a"]
    dead.trace_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    dead.save()
    started = timezone.now()
    for number, (code, error) in enumerate([(None, "network error (could not connect)"), (500, "")], start=1):
        Attempt.objects.create(job=dead, number=number, started_at=started, duration_ms=12 * number,
                               status_code=code, error=error, outcome="retry")  # fmt: skip
    client, token = csrf_client(staff("replay_job"))

    page = client.get(f"/dashboard/jobs/{dead.pk}/").content.decode()

    tries = page.split('id="tries"')[1]
    assert tries.index("network error (could not connect)") < tries.index("HTTP 500")
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in page and "Bruiloft Jansen" in page
    assert client.post(f"/dashboard/jobs/{dead.pk}/replay", {"csrfmiddlewaretoken": token}).status_code == 302
    assert Job.objects.get(pk=dead.pk).status == Status.PENDING
    assert Job.objects.get(pk=jobs["b"].pk).status == Status.DEAD


def test_replay_needs_the_permission_and_post(jobs):
    viewer, token = csrf_client(staff())
    assert (
        viewer.post(f"/dashboard/jobs/{jobs['a'].pk}/replay", {"csrfmiddlewaretoken": token}).status_code
        == 403
    )
    assert viewer.get(f"/dashboard/jobs/{jobs['a'].pk}/replay").status_code == 405
    assert Client().get("/dashboard/queues/rentguy/jobs").status_code == 302
    assert Job.objects.get(pk=jobs["a"].pk).status == Status.DEAD


def test_a_key_search_is_one_index_lookup(jobs):
    if connection.vendor != "postgresql":
        pytest.skip("the query plan is PostgreSQL's")
    now = timezone.now()
    Job.objects.bulk_create(
        Job(queue="rentguy", payload={}, idempotency_key=f"k-{n}", created_at=now, next_attempt_at=now)
        for n in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE integrations_job")
        cursor.execute(
            "EXPLAIN SELECT id FROM integrations_job WHERE queue = %s AND idempotency_key = %s",
            ["rentguy", "k-7"],
        )
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "job_unique_idempotency_key" in plan, plan


def test_the_root_leads_to_the_dashboard_and_the_login_page_is_mrdjs():
    client = Client()

    assert client.get("/")["Location"] == "/dashboard/"
    login = client.get("/admin/login/").content.decode()
    assert "<title>Log in | mrdj</title>" in login and "Django administration" not in login


def test_a_payload_search_reads_a_bounded_window_and_offers_to_go_further_back(jobs, monkeypatch):
    from dashboard import job_pages

    monkeypatch.setattr(job_pages, "SEARCH_WINDOW", 2)
    monkeypatch.setattr(job_pages, "SEARCH_WINDOWS", 1)
    for _ in range(3):
        job(Status.DONE)  # newer jobs without the text
    client = Client()
    client.force_login(staff())

    page = client.get("/dashboard/queues/rentguy/jobs?q=Jansen").content.decode()
    assert 'data-job="' not in page and "data-searched-to" in page
    older = page.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    found = []
    while older and not found:  # Search older jobs, window by window
        found = listed(client, older)
        next_page = client.get(f"/dashboard/queues/rentguy/jobs{older}").content.decode()
        older = (
            next_page.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
            if 'rel="next"' in next_page
            else ""
        )
    assert found == [jobs["a"].pk]

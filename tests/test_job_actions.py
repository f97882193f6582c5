"""Cancel jobs, correct a payload and send it again, the answer's first bytes on each try, and
what the queue cards say when nothing can flow."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from integrations import heartbeat, job_edits
from integrations.models import Attempt, Job, QueueCounter, Status
from mrdj.models import AuditEvent
from tests.conftest import TOKENS
from tests.processes import wait_until
from tests.receivers import Answer
from tests.support import csrf_client, put_jobs, staff

pytestmark = pytest.mark.django_db


def counts(queue: str = "rentguy") -> dict[str, int]:
    return QueueCounter.objects.counts().get(queue, {})


def operator(*permissions: str):
    return csrf_client(staff(*permissions))


def test_cancel_keeps_the_job_and_moves_only_waiting_and_dead_letter_jobs():
    dead = put_jobs("rentguy", Status.DEAD, 2)
    waiting = put_jobs("rentguy", Status.RETRY, 1)
    delivered = put_jobs("rentguy", Status.DONE, 1)
    client, token = operator("cancel_job", "replay_job")

    answer = client.post(
        "/dashboard/queues/rentguy/jobs/selected",
        {"csrfmiddlewaretoken": token, "do": "cancel", "ids": [*dead, *waiting, *delivered]},
        follow=True,
    )

    assert "Cancelled 3 of 4 selected job(s) (the others are in flight" in answer.content.decode()
    cancelled = Job.objects.filter(status=Status.CANCELLED)
    assert sorted(cancelled.values_list("pk", flat=True)) == sorted([*dead, *waiting])
    assert all(job.last_error.startswith("cancelled by ops-") for job in cancelled)
    assert Job.objects.get(pk=delivered[0]).status == Status.DONE
    assert counts()[Status.CANCELLED] == 3 and counts()[Status.DEAD] == 0 and counts()[Status.RETRY] == 0
    record = AuditEvent.objects.get(action="job.cancel")
    assert record.before["jobs"][str(dead[0])] == "dead" and record.after == {"cancelled": 3}


def test_cancel_needs_its_own_permission():
    dead = put_jobs("rentguy", Status.DEAD, 1)
    client, token = operator("replay_job")

    selection = {"csrfmiddlewaretoken": token, "do": "cancel", "ids": dead}
    assert client.post("/dashboard/queues/rentguy/jobs/selected", selection).status_code == 403
    canceller, its_token = operator("cancel_job")
    replay = {"csrfmiddlewaretoken": its_token, "do": "replay", "ids": dead}
    assert canceller.post("/dashboard/queues/rentguy/jobs/selected", replay).status_code == 403
    assert canceller.get("/dashboard/queues/rentguy/jobs/selected").status_code == 405
    assert client.post(f"/dashboard/jobs/{dead[0]}/cancel", {"csrfmiddlewaretoken": token}).status_code == 403
    assert Job.objects.get(pk=dead[0]).status == Status.DEAD


def test_edit_then_replay_keeps_the_original_shows_a_diff_and_audits_both():
    (pk,) = put_jobs("rentguy", Status.DEAD, 1)
    Job.objects.filter(pk=pk).update(payload={"lead": "Jansen", "email": "jansen@example"}, attempts=3)
    client, token = operator("cancel_job")
    corrected = {"lead": "Jansen", "email": "jansen@example.org"}

    client.post(
        f"/dashboard/jobs/{pk}/edit", {"csrfmiddlewaretoken": token, "payload": json.dumps(corrected)}
    )
    client.post(
        f"/dashboard/jobs/{pk}/edit",
        {"csrfmiddlewaretoken": token, "payload": json.dumps({**corrected, "phone": "06"})},
    )

    job = Job.objects.get(pk=pk)
    assert job.status == Status.PENDING and job.attempts == 0
    assert job.original_payload == {"lead": "Jansen", "email": "jansen@example"}  # intake's, kept
    assert job.payload == {**corrected, "phone": "06"}
    assert counts()[Status.PENDING] == 1 and counts()[Status.DEAD] == 0
    first, second = AuditEvent.objects.filter(action="job.edit").order_by("pk")
    assert first.before == {"status": "dead", "payload": {"lead": "Jansen", "email": "jansen@example"}}
    assert first.after == {"status": "pending", "payload": corrected}
    assert second.before["payload"] == corrected
    page = client.get(f"/dashboard/jobs/{pk}/").content.decode()
    assert '<span class="del">-  &quot;email&quot;: &quot;jansen@example&quot;,</span>' in page
    assert '<span class="add">+  &quot;phone&quot;: &quot;06&quot;</span>' in page
    audit = client.get("/dashboard/audit/?action=job.edit").content.decode()
    assert '<span class="add">+    &quot;email&quot;: &quot;jansen@example.org&quot;,</span>' in audit


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ("{not json", "Not saved: payload is not valid JSON"),
        ("[1, 2]", "Not saved: payload: a JSON object is expected"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ("[" * 40 + "]" * 40, "nested more than 32 levels deep"),
    ],
)
def test_a_payload_that_cannot_be_sent_is_refused_and_changes_nothing(payload, says):
    (pk,) = put_jobs("rentguy", Status.DEAD, 1)
    before = Job.objects.get(pk=pk).payload
    client, token = operator("cancel_job")

    answer = client.post(
        f"/dashboard/jobs/{pk}/edit", {"csrfmiddlewaretoken": token, "payload": payload}, follow=True
    )

    assert answer.status_code == 200 and says in answer.content.decode()
    job = Job.objects.get(pk=pk)
    assert (job.status, job.payload, job.original_payload) == (Status.DEAD, before, None)
    assert not AuditEvent.objects.filter(action="job.edit").exists()


def test_a_job_in_flight_or_delivered_is_not_edited():
    (pk,) = put_jobs("rentguy", Status.DONE, 1)
    with pytest.raises(job_edits.Refused, match="only waiting and dead-letter jobs are edited"):
        job_edits.edit_and_replay(pk, {"a": 1}, "cli:test")


@pytest.mark.django_db(transaction=True)
def test_each_try_keeps_the_first_characters_of_the_answer(inprocess_worker, upstream):
    upstream.script(
        Answer(500, body=b'{"error": "database is locked", "detail": "' + b"x" * 500 + b'"}'),
        Answer(201, body='{"id": "lead-42", "naam": "Café"}'.encode()),
    )
    client = Client()
    created = client.post(
        "/integrations/rentguy/jobs",
        {"payload": {"lead": "x"}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKENS['INTEGRATIONS_API_TOKEN']}",
    )
    job_id = created.json()["id"]
    wait_until(lambda: Job.objects.get(pk=job_id).status == Status.DONE, message="the job is delivered")
    answers = list(Attempt.objects.filter(job_id=job_id).order_by("number").values_list("answer", flat=True))
    assert answers[0].startswith('{"error": "database is locked"') and len(answers[0]) == 200
    assert answers[1] == '{"id": "lead-42", "naam": "Café"}'


def test_the_card_turns_red_and_says_why_when_nothing_can_flow(managed_env):
    client = Client()
    client.force_login(staff())

    card = client.get("/dashboard/queues.json").json()["queues"][0]
    assert card["severity"] == "critical"
    assert any("nothing consumes it: no in-process worker seen" in problem for problem in card["problems"])
    assert "RENTGUY_API_URL is not set: every try fails until it is (Configuration tab)" in card["problems"]
    assert "RENTGUY_API_TOKEN is not set: the upstream refuses jobs without it" in card["problems"]

    managed_env.update({"RENTGUY_API_URL": "http://127.0.0.1:9/leads", "RENTGUY_API_TOKEN": "t"})
    heartbeat.record("in-process")
    card = client.get("/dashboard/queues.json").json()["queues"][0]
    assert (card["severity"], card["problems"]) == ("ok", [])

    managed_env.update({"QUEUE_MAX_ATTEMPTS": "many"})
    card = client.get("/dashboard/queues.json").json()["queues"][0]
    assert card["severity"] == "critical"
    assert any(problem.startswith("QUEUE_MAX_ATTEMPTS:") for problem in card["problems"])
    page = client.get("/dashboard/").content.decode()
    assert 'data-severity="critical"' in page and "QUEUE_MAX_ATTEMPTS:" in page


def test_flush_says_what_it_moves(managed_env):
    put_jobs("rentguy", Status.PENDING, 1)
    put_jobs("rentguy", Status.RETRY, 2)
    client = Client()
    client.force_login(staff())

    card = client.get("/dashboard/queues.json").json()["queues"][0]

    assert card["flush_text"] == "3 waiting, 2 of them retrying: flush retries those 2 now"
    page = client.get("/dashboard/").content.decode()
    assert 'data-confirm="rentguy: 3 waiting, 2 of them retrying: flush retries those 2 now. Flush?"' in page
    assert 'Flush queue<small lang="nl">Queue flushen</small>' in page


def test_the_card_names_the_top_causes_of_dead_letter(managed_env):
    dead = put_jobs("rentguy", Status.DEAD, 3)
    Job.objects.filter(pk__in=dead[:2]).update(last_error="HTTP 500 Internal Server Error")
    Job.objects.filter(pk=dead[2]).update(last_error="RENTGUY_API_URL is not set")
    client = Client()
    client.force_login(staff())

    card = client.get("/dashboard/queues.json").json()["queues"][0]

    assert card["causes"] == ["HTTP 500 Internal Server Error (2 jobs)", "RENTGUY_API_URL is not set (1 job)"]

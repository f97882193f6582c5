from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations import operations
from integrations.models import Job, Status
from integrations.queues import QUEUES
from mrdj.models import AuditEvent
from tests.conftest import TOKENS
from tests.support import claim, csrf_client, staff

pytestmark = pytest.mark.django_db
OPS = {"HTTP_AUTHORIZATION": f"Bearer {TOKENS['OPS_API_TOKEN']}"}
RENTGUY = QUEUES["rentguy"]


@pytest.fixture
def jobs(managed_env):
    """Three jobs waiting to retry in an hour and two dead ones, on rentguy; one dead on sevensa."""
    managed_env.update(TOKENS)
    made = [operations.enqueue(RENTGUY, {"n": n})[0] for n in range(5)]
    other, _ = operations.enqueue(QUEUES["sevensa"], {"n": 9})
    claim("rentguy", 5)
    claim("sevensa", 1)
    later = timezone.now() + timedelta(hours=1)
    Job.objects.filter(pk__in=[j.pk for j in made[:3]]).update(status=Status.RETRY, next_attempt_at=later)
    Job.objects.filter(pk__in=[made[3].pk, made[4].pk, other.pk]).update(status=Status.DEAD, attempts=3)
    operations.recount()
    return made


def test_flush_with_the_ops_token_makes_waiting_jobs_due_now(client, jobs):
    response = client.post("/integrations/rentguy/flush", **OPS)

    assert response.status_code == 200
    assert response.json() == {"queue": "rentguy", "action": "flush", "moved": 3}
    assert all(j.next_attempt_at <= timezone.now() for j in Job.objects.filter(status=Status.RETRY))
    event = AuditEvent.objects.get(action="queue.flush")
    assert (event.actor, event.target, event.after) == ("token:ops", "rentguy", {"jobs": 3})


def test_a_second_flush_moves_nothing(client, jobs):
    client.post("/integrations/rentguy/flush", **OPS)

    assert client.post("/integrations/rentguy/flush", **OPS).json()["moved"] == 0


def test_replay_all_dead_jobs_of_a_queue(client, jobs):
    response = client.post("/integrations/rentguy/deadletter/replay", **OPS)

    assert response.json() == {"queue": "rentguy", "action": "replay", "moved": 2}
    replayed = Job.objects.filter(pk__in=[jobs[3].pk, jobs[4].pk])
    assert {(j.status, j.attempts) for j in replayed} == {(Status.PENDING, 0)}
    assert Job.objects.filter(queue="sevensa", status=Status.DEAD).count() == 1  # other queue untouched
    assert operations.queue_figures()["queues"]["rentguy"]["dead_letter"] == 0
    assert client.post("/integrations/rentguy/deadletter/replay", **OPS).json()["moved"] == 0


def test_replay_chosen_ids(client, jobs):
    body = json.dumps({"ids": [jobs[4].pk, jobs[0].pk]})  # jobs[0] is not dead: not moved

    response = client.post("/integrations/rentguy/deadletter/replay", body, "application/json", **OPS)

    assert response.json()["moved"] == 1
    assert Job.objects.get(pk=jobs[4].pk).status == Status.PENDING
    assert Job.objects.get(pk=jobs[3].pk).status == Status.DEAD
    assert AuditEvent.objects.get(action="deadletter.replay").before == {
        "ids": sorted([jobs[4].pk, jobs[0].pk])
    }


@pytest.mark.parametrize(
    "body", ['{"ids": "all"}', '{"ids": [1, "2"]}', '{"ids": [0]}', '{"ids": [true]}', "[1]", "{nope"]
)
def test_replay_refuses_bad_ids_and_changes_nothing(client, jobs, body):
    response = client.post("/integrations/rentguy/deadletter/replay", body, "application/json", **OPS)

    assert response.status_code == 400
    assert Job.objects.filter(status=Status.DEAD).count() == 3
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "path", ["/integrations/mailchimp/flush", "/integrations/mailchimp/deadletter/replay"]
)
def test_an_unknown_queue_is_404(client, jobs, path):
    assert client.post(path, **OPS).status_code == 404


@pytest.mark.parametrize("path", ["/integrations/rentguy/flush", "/integrations/rentguy/deadletter/replay"])
def test_anonymous_or_wrong_tokens_are_refused(client, jobs, path):
    assert client.post(path).status_code == 401
    assert client.post(path, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    metrics_token = {"HTTP_AUTHORIZATION": f"Bearer {TOKENS['METRICS_API_TOKEN']}"}
    assert client.post(path, **metrics_token).status_code == 401
    assert client.get(path, **OPS).status_code == 405
    assert not AuditEvent.objects.exists()


def test_staff_need_the_permission(jobs):
    client, csrf = csrf_client(staff())

    response = client.post("/integrations/rentguy/flush", HTTP_X_CSRFTOKEN=csrf)

    assert response.status_code == 403
    assert "integrations.flush_job" in response.json()["error"]


def test_staff_with_the_permission_need_csrf(jobs):
    user = staff("flush_job", "replay_job")
    client, csrf = csrf_client(user)

    assert client.post("/integrations/rentguy/flush").status_code == 403
    assert client.post("/integrations/rentguy/deadletter/replay").status_code == 403
    assert not AuditEvent.objects.exists()

    assert client.post("/integrations/rentguy/flush", HTTP_X_CSRFTOKEN=csrf).json()["moved"] == 3
    assert client.post("/integrations/rentguy/deadletter/replay", HTTP_X_CSRFTOKEN=csrf).json()["moved"] == 2
    assert set(AuditEvent.objects.values_list("user", "action")) == {
        (user.pk, "queue.flush"),
        (user.pk, "deadletter.replay"),
    }


def test_admin_actions_flush_and_replay_the_selection(client, jobs):
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    selected = [jobs[0].pk, jobs[3].pk]

    client.post("/admin/integrations/job/", {"action": "flush_selected", "_selected_action": selected})
    response = client.post(
        "/admin/integrations/job/", {"action": "replay_selected", "_selected_action": selected}, follow=True
    )

    assert "1 job replayed." in [str(m) for m in response.context["messages"]]
    assert Job.objects.get(pk=jobs[0].pk).next_attempt_at <= timezone.now()
    assert Job.objects.get(pk=jobs[1].pk).next_attempt_at > timezone.now()
    assert Job.objects.get(pk=jobs[3].pk).status == Status.PENDING
    assert Job.objects.get(pk=jobs[4].pk).status == Status.DEAD
    assert AuditEvent.objects.filter(user=user).count() == 2


def test_the_queues_command(jobs, capsys):
    call_command("queues", "status")
    out = capsys.readouterr().out
    assert "mode: in-process" in out
    rentguy = next(line for line in out.splitlines() if line.startswith("rentguy"))
    assert rentguy.split()[:2] == ["rentguy", "3"]

    call_command("queues", "flush", "rentguy")
    call_command("queues", "replay", "rentguy", "--id", str(jobs[3].pk))
    out = capsys.readouterr().out
    assert "rentguy: 3 job(s) flushed" in out
    assert "rentguy: 1 job(s) replayed" in out
    assert AuditEvent.objects.filter(actor__startswith="cli:").count() == 2


def test_the_queues_command_switches_the_mode_and_audits_it(jobs, managed_env, capsys, monkeypatch):
    monkeypatch.delenv("QUEUE_REDIS_ENABLED", raising=False)

    call_command("queues", "mode", "celery")
    assert managed_env.get("QUEUE_REDIS_ENABLED") == "true"
    call_command("queues", "mode", "in-process")

    assert managed_env.get("QUEUE_REDIS_ENABLED") == "false"
    assert "jobs run: in-process" in capsys.readouterr().out
    changes = AuditEvent.objects.filter(action="queue.mode").order_by("id")
    assert [(e.before, e.after) for e in changes] == [("in-process", "celery"), ("celery", "in-process")]

    monkeypatch.setenv("QUEUE_REDIS_ENABLED", "true")
    with pytest.raises(CommandError, match="unset it there"):
        call_command("queues", "mode", "in-process")


def test_switching_to_celery_while_redis_does_not_answer_is_refused_unless_forced(
    managed_env, closed_port, monkeypatch
):
    from django.core.management.base import CommandError

    from dashboard.page_data import upstream_check

    managed_env.set("QUEUE_REDIS_ENABLED", "false")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{closed_port}/0")

    with pytest.raises(CommandError, match=r"Redis does not answer \(unreachable \(ConnectionError\)\)"):
        call_command("queues", "mode", "celery")
    assert managed_env.get("QUEUE_REDIS_ENABLED") == "false"
    call_command("queues", "mode", "celery", "--force")
    assert managed_env.get("QUEUE_REDIS_ENABLED") == "true"

    managed_env.set("RENTGUY_API_URL", "")
    check = upstream_check()
    assert not check.ok and check.detail.startswith("RENTGUY_API_URL")

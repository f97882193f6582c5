"""Jira tickets against a local stand-in that keeps issues and answers like Jira's REST API v2."""

from __future__ import annotations

import base64
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from alerting import jira, lifecycle, sender
from alerting.models import Alert
from integrations.models import Job, Status
from integrations.operations import recount
from tests.conftest import wait_until
from tests.fake_jira import FakeJira
from tests.receivers import Answer, Receiver
from tests.support import put_jobs

pytestmark = pytest.mark.django_db(transaction=True)
MINUTE = timedelta(minutes=1)


def creates(fake: FakeJira) -> list:
    return [r for r in fake.receiver.to("/rest/api/2/issue") if r.method == "POST"]


def test_a_critical_alert_opens_one_issue_at_once(fake_jira):
    put_jobs("rentguy", Status.PENDING, 4)
    lifecycle.tick()
    alert = wait_until(lambda: Alert.objects.exclude(jira_key="").first())
    assert alert.jira_key == "OPS-1"
    fields = fake_jira.issues["OPS-1"]
    assert fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Task"}
    assert fields["labels"] == ["mrdj", alert.label]
    assert "rentguy" in fields["summary"]
    assert "*Queue*: rentguy" in fields["description"]
    assert (
        "*First responder*: @primary-oncall (primary on-call, not yet acknowledged)" in fields["description"]
    )
    assert "*Expected resolution*:" in fields["description"]
    assert '"backlog": 4' in fields["description"]  # the alert payload
    request = creates(fake_jira)[0]
    expected = base64.b64encode(b"ops-bot@misterdj.example:jira-api-token").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    for later in (MINUTE, 2 * MINUTE):  # later evaluations and notifications open nothing more
        lifecycle.tick(timezone.now() + later)
    sender.shutdown()
    assert len(creates(fake_jira)) == 1


def test_a_warning_opens_an_issue_only_when_still_firing_after_the_delay(fake_jira):
    put_jobs("rentguy", Status.PENDING, 2)
    t0 = timezone.now()
    lifecycle.tick(t0)
    lifecycle.tick(t0 + 14 * MINUTE)
    sender.shutdown()
    assert creates(fake_jira) == []
    lifecycle.tick(t0 + 15 * MINUTE)
    assert wait_until(lambda: Alert.objects.exclude(jira_key="").first()).jira_key == "OPS-1"


def test_jira_timing_out_after_creating_still_leaves_one_issue(fake_jira, managed_env):
    managed_env.set("ALERT_JIRA_READ_TIMEOUT_MS", "300")
    fake_jira.slow_create = 1.0
    put_jobs("rentguy", Status.PENDING, 4)
    t0 = timezone.now()
    lifecycle.tick(t0)
    sender.shutdown()
    alert = Alert.objects.get()
    assert alert.jira_key == "" and "timed out" in alert.jira_error
    lifecycle.tick(t0 + MINUTE)  # the retry looks the label up before creating
    sender.shutdown()
    alert.refresh_from_db()
    assert alert.jira_key == "OPS-1" and alert.jira_error == ""
    assert len(fake_jira.issues) == 1 and len(creates(fake_jira)) == 1


def test_jira_down_is_retried_until_it_answers(fake_jira):
    fake_jira.down = True
    put_jobs("rentguy", Status.PENDING, 4)
    t0 = timezone.now()
    lifecycle.tick(t0)
    sender.shutdown()
    alert = Alert.objects.get()
    assert "answered 503" in alert.jira_error and alert.jira_key == ""
    lifecycle.tick(t0 + timedelta(seconds=10))  # before ALERT_JIRA_RETRY_MS: left alone
    sender.shutdown()
    assert len(fake_jira.receiver.received) == 1
    fake_jira.down = False
    lifecycle.tick(t0 + MINUTE)
    sender.shutdown()
    alert.refresh_from_db()
    assert alert.jira_key == "OPS-1" and alert.jira_error == ""


def test_resolution_comments_on_the_issue_and_transitions_it(fake_jira, managed_env):
    managed_env.update({"ALERT_RESOLVE_QUIET_MS": "60000", "ALERT_JIRA_RESOLVE_TRANSITION": "done"})
    put_jobs("rentguy", Status.PENDING, 4)
    t0 = timezone.now()
    lifecycle.tick(t0)
    wait_until(lambda: Alert.objects.exclude(jira_key="").exists())
    Job.objects.update(status=Status.DONE)
    recount()
    lifecycle.tick(t0 + MINUTE)
    lifecycle.tick(t0 + 2 * MINUTE)
    alert = wait_until(lambda: Alert.objects.filter(jira_resolved_at__isnull=False).first())
    assert alert.state == Alert.State.RESOLVED
    (comment,) = fake_jira.comments["OPS-1"]
    assert comment.startswith("Resolved by mrdj") and "Record the root cause" in comment
    assert fake_jira.transitions == [("OPS-1", "31")]
    lifecycle.tick(t0 + 3 * MINUTE)
    sender.shutdown()
    assert len(fake_jira.comments["OPS-1"]) == 1


def test_the_data_center_search_is_used_where_the_cloud_one_is_missing(fake_jira, managed_env):
    calls = []

    def respond(request):
        calls.append(urlsplit(request.path).path)
        if urlsplit(request.path).path == "/rest/api/2/search":
            return Answer(200, body=b'{"issues": [{"id": "7", "key": "OPS-7"}], "total": 1}')
        return Answer(404, body=b"{}")

    with Receiver(respond=respond) as server:
        managed_env.set("ALERT_JIRA_ENDPOINT", server.url)
        client = jira.JiraClient(jira.JiraSettings.read())
        assert client.find("mrdj-alert-abc") == "OPS-7"
    assert calls == ["/rest/api/2/search/jql", "/rest/api/2/search"]

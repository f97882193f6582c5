"""Acknowledge from Slack: the button on the alert message, Slack's signed callback, the user
mapping (admin link or e-mail through users.info), and the message updated via response_url.
Slack, its Web API and the response_url are local receivers."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from alerting import content, lifecycle
from alerting.evaluation import Condition
from alerting.models import Alert, SlackUser
from alerting.transports.slack import Slack
from tests.processes import wait_until
from tests.receivers import Answer, Receiver

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def slack(managed_env):
    """One receiver for response_url and Slack's Web API (users.info)."""
    with Receiver() as receiver:
        managed_env.update({"SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": receiver.url + "/api"})
        yield receiver


def alert(**fields) -> Alert:
    return Alert.objects.create(
        key="rentguy:backlog", queue="rentguy", kind="backlog", severity="critical",
        started_at=timezone.now(), **fields,
    )  # fmt: skip


def responder(name: str = "dj-ops", email: str = "ops@misterdj.example") -> User:
    user = User.objects.create_user(name, email=email, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="acknowledge_alert"))
    return user


def click(slack: Receiver, alert_id: int, user_id: str = "U0OPS", **overrides) -> tuple[bytes, dict]:
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": "dj.ops", "team_id": "T1"},
        "actions": [{"action_id": "mrdj_acknowledge", "value": str(alert_id), "type": "button"}],
        "response_url": slack.url + "/response",
        "message": {"blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "[CRITICAL] rentguy"}},
            {"type": "actions", "elements": [
                {"type": "button", "action_id": "mrdj_acknowledge", "value": str(alert_id)},
                {"type": "button", "action_id": "mrdj_open_dashboard", "url": "https://ops.example/dashboard/"},
            ]},
        ]},
        **overrides,
    }  # fmt: skip
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time()))
    signature = (
        "v0=" + hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    )
    return body, {"HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp, "HTTP_X_SLACK_SIGNATURE": signature}


def post(body: bytes, headers: dict):
    return Client().post(
        "/integrations/slack/actions", body, content_type="application/x-www-form-urlencoded", **headers
    )


def updates(slack: Receiver, count: int = 1) -> list[dict]:
    return [request.json() for request in slack.wait_for(count) if request.path == "/response"]


def test_the_slack_message_carries_the_acknowledge_button_only_with_a_signing_secret(managed_env):
    firing = alert()

    def body():
        return Slack(2, 2).body(content.for_alert(firing, "fired"), "")

    actions = body()["blocks"][-1]["elements"]
    assert [button["action_id"] for button in actions] == ["mrdj_open_dashboard"]
    managed_env.update({"SLACK_SIGNING_SECRET": SECRET})
    actions = body()["blocks"][-1]["elements"]
    assert actions[0] == {
        "type": "button", "action_id": "mrdj_acknowledge", "style": "primary", "value": str(firing.pk),
        "text": {"type": "plain_text", "text": "Acknowledge"},
    }  # fmt: skip
    assert actions[1]["text"]["text"] == "Open in dashboard"


def test_a_linked_user_acknowledges_and_the_message_says_who(slack):
    firing, user = alert(), responder()
    SlackUser.objects.create(slack_user_id="U0OPS", user=user)

    answer = post(*click(slack, firing.pk))

    assert answer.status_code == 200
    (update,) = updates(slack)
    firing.refresh_from_db()
    assert (firing.acknowledged_by, firing.state) == (user, Alert.State.FIRING)
    assert update["replace_original"] is True
    assert update["text"].startswith("Acknowledged by dj-ops in Slack at ")
    kinds = [block["type"] for block in update["blocks"]]
    assert kinds == ["header", "actions", "context"]
    assert [b["action_id"] for b in update["blocks"][1]["elements"]] == ["mrdj_open_dashboard"]


def test_an_unlinked_user_is_found_by_email_through_users_info(slack, managed_env):
    managed_env.update({"SLACK_BOT_TOKEN": "xoxb-test-token"})
    firing, user = alert(), responder(email="Ops@MisterDJ.example")
    slack.script(
        Answer(
            200,
            body=json.dumps({"ok": True, "user": {"profile": {"email": "ops@misterdj.example"}}}).encode(),
        )
    )

    post(*click(slack, firing.pk, user_id="U0NEW"))

    lookup = slack.wait_for(2)[0]
    assert lookup.method == "GET" and lookup.path == "/api/users.info?user=U0NEW"
    assert lookup.headers["Authorization"] == "Bearer xoxb-test-token"
    wait_until(lambda: Alert.objects.get(pk=firing.pk).acknowledged_by == user)


def test_an_unknown_user_is_told_and_nothing_changes(slack):
    firing = alert()

    post(*click(slack, firing.pk, user_id="U0STRANGER"))

    (update,) = updates(slack)
    assert update["response_type"] == "ephemeral" and update["replace_original"] is False
    assert "mrdj does not know Slack user dj.ops: nothing was acknowledged" in update["text"]
    assert Alert.objects.get(pk=firing.pk).acknowledged_at is None


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (lambda body, h: (body + b"x", h), "X-Slack-Signature does not match"),
        (lambda body, h: (body, {**h, "HTTP_X_SLACK_SIGNATURE": "v0=" + "0" * 64}), "does not match"),
        (lambda body, h: (body, {**h, "HTTP_X_SLACK_REQUEST_TIMESTAMP": str(int(time.time()) - 301)}),
         "older than five minutes"),
        (lambda body, h: (body, {}), "X-Slack-Request-Timestamp is missing"),
    ],
)  # fmt: skip
def test_a_forged_or_replayed_request_is_refused_and_changes_nothing(slack, tamper, says):
    firing, user = alert(), responder()
    SlackUser.objects.create(slack_user_id="U0OPS", user=user)

    answer = post(*tamper(*click(slack, firing.pk)))

    assert answer.status_code == 401 and says in answer.json()["error"]
    assert Alert.objects.get(pk=firing.pk).acknowledged_at is None and slack.received == []


def test_a_malformed_payload_is_400_not_500(slack):
    body = b"payload=%7Bnot+json"
    timestamp = str(int(time.time()))
    signature = (
        "v0=" + hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    )
    answer = post(body, {"HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp, "HTTP_X_SLACK_SIGNATURE": signature})
    assert answer.status_code == 400 and answer.json()["error"].startswith("payload:")


def test_acknowledge_and_auto_resolve_at_once_never_reopen_the_alert(slack):
    user = responder()
    SlackUser.objects.create(slack_user_id="U0OPS", user=user)
    clear = Condition("rentguy", "backlog", None)
    for _ in range(5):
        firing = alert(clear_since=timezone.now() - timedelta(days=1))  # clear long enough: resolves
        start = threading.Barrier(2)

        def resolve(start=start):
            start.wait()
            lifecycle.tick(conditions=[clear])  # the queue is fine again: the evaluation resolves it

        resolver = threading.Thread(target=resolve)
        resolver.start()
        start.wait()
        post(*click(slack, firing.pk))
        resolver.join()
        firing.refresh_from_db()
        assert firing.state == Alert.State.RESOLVED
        firing.delete()

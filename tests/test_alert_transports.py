"""Each service gets the body it documents; failures are recorded, retried or given up, in isolation."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from prometheus_client import REGISTRY

from alerting import content, lifecycle, sender, targets
from alerting.models import Alert, Delivery, Kind, Notification
from alerting.transports import TRANSPORTS
from integrations.models import Status
from mrdj.config import ConfigError
from mrdj.models import AuditEvent
from tests.conftest import wait_until
from tests.receivers import Answer, Receiver
from tests.support import put_jobs

pytestmark = pytest.mark.django_db(transaction=True)
SECRET_PATH = "T0000/B0000/XXXXsecretXXXX"


@pytest.fixture
def fired(webhooks, managed_env):
    """A critical backlog alert on rentguy, delivered to all four lifecycle."""
    managed_env.update({"ALERT_QUEUE_WARNING_BACKLOG": "1", "ALERT_QUEUE_CRITICAL_BACKLOG": "2"})
    put_jobs("rentguy", Status.PENDING, 2)
    lifecycle.tick()
    sender.shutdown()
    return {
        service: webhooks.to(f"/{service}")[0].json() for service in ("slack", "discord", "teams", "json")
    }


@pytest.mark.parametrize(
    ("url", "service"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXX", "slack"),
        ("https://discord.com/api/webhooks/123/abc", "discord"),
        ("https://discordapp.com/api/webhooks/123/abc", "discord"),
        (
            "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke",
            "teams",
        ),
        (
            "https://default1.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/x",
            "teams",
        ),
        ("https://misterdj.webhook.office.com/webhookb2/abc@def/IncomingWebhook/x/y", "teams"),
        ("https://discord.com/channels/1/2", "json"),
        ("https://alerts.example.com/hook", "json"),
        ("teams+http://127.0.0.1:9/anything", "teams"),
        ("json+https://hooks.slack.com/services/T/B/X", "json"),
    ],
)
def test_it_recognises_the_service_from_the_url_or_its_prefix(url, service):
    assert targets.parse_target(url, "entry").service == service


@pytest.mark.parametrize(
    "raw", ["ftp://hooks.example.com/x", f"slack+hooks.slack.com/{SECRET_PATH}", "not a url"]
)
def test_a_broken_webhook_entry_is_refused_without_echoing_it(managed_env, raw):
    managed_env.set("ALERT_WEBHOOK_URLS", f"https://ok.example.com/hook,{raw}")
    with pytest.raises(ConfigError) as refused:
        targets.webhook_targets()
    assert "ALERT_WEBHOOK_URLS entry 2" in str(refused.value)
    assert raw not in str(refused.value)
    warnings = [f"{m.id}: {m.msg}" for m in checks.run_checks()]
    assert any(w.startswith("alerting.W001: ALERT_WEBHOOK_URLS entry 2") for w in warnings), warnings


@pytest.mark.parametrize(
    ("route", "message"),
    [("urgent:#x", "must start with warning: or critical:"), ("critical:", "names no target")],
)
def test_a_broken_severity_route_is_refused(managed_env, route, message):
    managed_env.set("ALERT_SEVERITY_ROUTE", route)
    with pytest.raises(ConfigError, match=message):
        targets.severity_routes()


def test_slack_gets_blocks_with_a_text_fallback_and_the_default_channel(fired):
    body = fired["slack"]
    assert body["text"] == "[CRITICAL] rentguy: queue thresholds exceeded"
    assert body["channel"] == "#alerts-queues"
    header, message, facts, *rest = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": body["text"]}}
    assert message["text"] == {"type": "mrkdwn", "text": "queue thresholds exceeded"}
    assert [field["text"].split("\n")[0] for field in facts["fields"]] == [
        "*Queue*",
        "*Severity*",
        "*Backlog*",
        "*Retry age*",
        "*Dead-letter*",
    ]
    assert all(field["type"] == "mrkdwn" and len(field["text"]) <= 2000 for field in facts["fields"])
    runbook = rest[0]["text"]["text"]
    assert runbook.startswith("Runbook: Runbook 'Backlog Critical'")
    assert rest[-1]["elements"][0]["url"] == "https://ops.misterdj.example/dashboard/"


def test_slack_text_is_escaped_for_mrkdwn():
    body = TRANSPORTS["slack"](1, 1).body(replace(content.for_smoke(), message="a <b> & c"), "")
    assert body["blocks"][1]["text"]["text"] == "a &lt;b&gt; &amp; c"


def test_discord_gets_content_and_one_embed_without_mentions(fired):
    body = fired["discord"]
    assert body["content"] == "[CRITICAL] rentguy: queue thresholds exceeded"
    assert body["allowed_mentions"] == {"parse": []}
    (embed,) = body["embeds"]
    assert embed["color"] == 0xE01E5A
    assert embed["url"] == "https://ops.misterdj.example/dashboard/"
    assert embed["fields"][0] == {"name": "Queue", "value": "rentguy", "inline": True}


def test_discord_stays_within_its_length_limits_whatever_the_content():
    huge = replace(
        content.for_smoke(),
        title="t" * 5000,
        message="m" * 9000,
        runbook="r" * 9000,
        facts=[(f"name{n}" * 50, "v" * 5000) for n in range(30)],
    )
    body = TRANSPORTS["discord"](1, 1).body(huge, "")
    (embed,) = body["embeds"]
    assert len(body["content"]) <= 2000
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"])
    total = len(embed["title"]) + len(embed["description"])
    total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= 6000


def test_teams_gets_an_adaptive_card_wrapped_in_a_message(fired):
    body = fired["teams"]
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == "[CRITICAL] rentguy: queue thresholds exceeded"
    facts = next(block for block in card["body"] if block["type"] == "FactSet")["facts"]
    assert {"title": "Queue", "value": "rentguy"} in facts
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open dashboard",
            "url": "https://ops.misterdj.example/dashboard/",
        }
    ]


def test_generic_json_is_one_flat_object(fired):
    body = fired["json"]
    assert body["type"] == "alert" and body["queue"] == "rentguy" and body["severity"] == "critical"
    assert body["message"] == "queue thresholds exceeded"
    assert (body["backlog"], body["active"], body["retry_age_ms"], body["dead_letter"]) == (2, 0, 0, 0)
    assert not any(isinstance(value, (dict, list)) for value in body.values())


def test_deliveries_are_recorded_without_the_secret_in_the_url(webhooks, managed_env):
    with Receiver() as other:
        managed_env.set("ALERT_WEBHOOK_URLS", f"json+{other.url}/{SECRET_PATH}")
        put_jobs("rentguy", Status.DEAD, 1)
        lifecycle.tick()
        other.wait_for(1)
        sender.shutdown()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT and delivery.response_code == 200
    assert delivery.duration_ms is not None
    stored = json.dumps([delivery.target, delivery.target_hash, Notification.objects.get().content])
    assert "secret" not in stored and delivery.target.startswith("json 127.0.0.1 #")


def test_a_failed_delivery_is_retried_with_backoff_until_it_goes_through(webhooks, managed_env):
    managed_env.set("ALERT_WEBHOOK_URLS", f"json+{webhooks.url}/json")
    failures = {"service": "json", "outcome": "retry"}
    counted = REGISTRY.get_sample_value("mrdj_alert_send_failures_total", failures) or 0
    webhooks.script(Answer(500, body=b"busy"), Answer(503, body=b"busy"))
    put_jobs("rentguy", Status.DEAD, 1)
    lifecycle.tick()
    delivery = wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.RETRY).first())
    assert delivery.error.startswith("json answered 500") and delivery.attempts == 1
    assert (delivery.next_attempt_at - timezone.now()).total_seconds() < 1  # 1 ms base in tests
    for _ in range(2):
        wait_until(lambda: sender.due())
        for future in sender.submit(sender.due()):
            future.result()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (Delivery.Status.SENT, 3, 200)
    assert len(webhooks.to("/json")) == 3
    # Each failed try is counted for Prometheus (and OTLP), by service and outcome.
    assert REGISTRY.get_sample_value("mrdj_alert_send_failures_total", failures) == counted + 2


def test_a_permanent_refusal_is_not_retried(webhooks, managed_env):
    managed_env.set("ALERT_WEBHOOK_URLS", f"slack+{webhooks.url}/slack")
    webhooks.script(Answer(404, body=b"no_service"))
    put_jobs("rentguy", Status.DEAD, 1)
    lifecycle.tick()
    sender.shutdown()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.error == "slack answered 404 Not Found: no_service"
    assert sender.due() == []


def test_backoff_doubles_up_to_its_maximum(managed_env):
    managed_env.update({"ALERT_DELIVERY_RETRY_BASE_MS": "1000", "ALERT_DELIVERY_RETRY_MAX_MS": "5000"})
    assert [sender.backoff_ms(n) for n in range(1, 6)] == [1000, 2000, 4000, 5000, 5000]


def test_a_hanging_webhook_does_not_delay_the_others(webhooks, managed_env):
    with Receiver(default=Answer(delay=6)) as hanging:
        managed_env.update(
            {
                "ALERT_WEBHOOK_URLS": f"json+{hanging.url}/hang," + managed_env.get("ALERT_WEBHOOK_URLS"),
                "ALERT_HTTP_READ_TIMEOUT_MS": "3000",
            }
        )
        put_jobs("rentguy", Status.DEAD, 1)
        lifecycle.tick()
        hanging.wait_for(1)
        wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.SENT).count() == 4)
        # All four went through while the first still hangs.
        hung = Delivery.objects.exclude(status=Delivery.Status.SENT).get()
        assert hung.status == Delivery.Status.SENDING and hung.target.startswith("json 127.0.0.1")
        slow = wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.RETRY).first())
        assert slow.error == "timed out"


def test_send_test_alert_posts_the_smoke_body_to_every_url_and_prints_each_result(webhooks, capsys):
    call_command("send_test_alert")
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and all(line.startswith("ok ") for line in printed)
    assert webhooks.to("/json")[0].json() == {"type": "smoke", "message": "alert-test"}
    assert webhooks.to("/slack")[0].json()["text"] == "mrdj alert test"
    assert webhooks.to("/teams")[0].json()["attachments"][0]["content"]["body"][1]["text"] == "alert-test"
    assert AuditEvent.objects.get(action="alert.test").actor.startswith("cli:")


def test_send_test_alert_fails_naming_the_target_that_did_not_take_it(
    webhooks, managed_env, closed_port, capsys
):
    managed_env.set("ALERT_WEBHOOK_URLS", f"{webhooks.url}/ok,http://127.0.0.1:{closed_port}/gone")
    with pytest.raises(CommandError, match="1 of 2 webhook"):
        call_command("send_test_alert")
    printed = capsys.readouterr().out
    assert "ok      json 127.0.0.1" in printed
    assert "FAILED  json 127.0.0.1" in printed and "could not connect" in printed
    assert Delivery.objects.filter(status=Delivery.Status.FAILED).count() == 1
    assert sender.due() == []  # a smoke test is not sent again later


def test_send_test_alert_without_urls_says_so(webhooks, managed_env):
    managed_env.set("ALERT_WEBHOOK_URLS", "")
    with pytest.raises(CommandError, match="ALERT_WEBHOOK_URLS is empty"):
        call_command("send_test_alert")


def test_a_dead_letter_alert_names_its_kind_in_every_service(webhooks):
    put_jobs("sevensa", Status.DEAD, 2)
    lifecycle.tick()
    sender.shutdown()
    assert Alert.objects.get().kind == Kind.DEAD_LETTER
    expected = "Job moved to dead-letter queue: 2 jobs, 2 in dead-letter now"
    assert webhooks.to("/json")[0].json()["message"] == expected
    assert webhooks.to("/slack")[0].json()["blocks"][1]["text"]["text"] == expected
    assert webhooks.to("/discord")[0].json()["embeds"][0]["description"].startswith(expected)

"""Message sizes and repetition: every service gets a body it accepts, whatever the texts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from alerting import content
from alerting.content import NotificationContent
from alerting.models import Alert
from alerting.transports import TRANSPORTS

pytestmark = pytest.mark.django_db
TEAMS_LIMIT = 28 * 1024  # Teams refuses messages of about 28 KB


def test_a_teams_card_with_huge_texts_stays_under_the_teams_limit():
    huge = "x" * 10_000
    message = NotificationContent(
        type="alert", alert_id=1, severity="critical", title=huge, message=huge,
        facts=[(f"fact {n} {huge}", huge) for n in range(20)], runbook=huge, escalation=huge,
        dashboard_url="https://ops.misterdj.example/dashboard/",
    )  # fmt: skip
    body = json.dumps(TRANSPORTS["teams"](2, 2).body(message, "")).encode()
    assert len(body) < TEAMS_LIMIT, len(body)  # 212 KB before the texts were clipped


def test_the_dr_message_names_each_queue_once():
    now = timezone.now()
    cases = [("sevensa", "backlog", 15), ("rentguy", "backlog", 22), ("rentguy", "retry_age", 22),
             ("sevensa", "retry_age", 15), ("rentguy", "dead_letter", 22)]  # fmt: skip
    alerts = []
    for n, (queue, kind, backlog) in enumerate(cases):
        figures = {"backlog": backlog, "retry_age_ms": 60_000, "dead_letter": 0}
        alerts.append(
            Alert.objects.create(
                queue=queue,
                kind=kind,
                severity="critical",
                started_at=now - timedelta(minutes=n),
                payload={"figures": figures},
            )
        )

    dr = content.for_dr("two queues critical", alerts)

    assert dr.backlog.count("rentguy:") == 1 and dr.backlog.count("sevensa:") == 1
    assert dr.retry_age.count("rentguy:") == 1 and dr.retry_age.count("sevensa:") == 1

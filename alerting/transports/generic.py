"""Generic JSON: one flat object, documented in docs/alerting.md, for anything else."""

from __future__ import annotations

from typing import Any

from alerting.content import SMOKE, NotificationContent
from alerting.transports.base import Transport


class GenericJson(Transport):
    service = "json"

    def body(self, content: NotificationContent, channel: str) -> dict[str, Any]:
        if content.type == "smoke":
            return dict(SMOKE)  # exactly the playbook's curl smoke test
        figures = content.figures
        return {
            "type": content.type,
            "event": content.event,
            "queue": content.queue,
            "kind": content.kind,
            "severity": content.severity,
            "message": content.message,
            "backlog": figures.get("backlog"),
            "active": figures.get("active"),
            "retry_age_ms": figures.get("retry_age_ms"),
            "dead_letter": figures.get("dead_letter"),
            "dead_letter_new": content.dead_letter_new,
            "backlog_description": content.backlog,
            "retry_age_description": content.retry_age,
            "runbook": content.runbook,
            "escalation": content.escalation,
            "alert_id": content.alert_id,
            "incident_id": content.incident_id,
            "started_at": content.started_at,
            "dashboard_url": content.dashboard_url,
        }

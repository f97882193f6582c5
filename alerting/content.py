"""What a notification says, independent of the service that carries it.

Every transport renders the same NotificationContent, so Slack, Teams and a generic
receiver never disagree about the figures, the runbook step or the link.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from alerting.models import Alert, Kind, Notification
from alerting.thresholds import Limits
from mrdj.config import get_config
from mrdj.times import human_ms

THRESHOLDS_EXCEEDED = "queue thresholds exceeded"
DEAD_LETTERED = "Job moved to dead-letter queue"
DR_RUNBOOK = "docs/disaster_recovery/activation.md"

# The action of the playbook's runbook table (section 6) for each case.
RUNBOOK = {
    (Kind.BACKLOG, "warning"): "Runbook 'Backlog Warning': check the upstream API and its secrets, "
    "then use /dashboard/ -> Queue flushen for the failed jobs.",
    (Kind.BACKLOG, "critical"): "Runbook 'Backlog Critical': switch QUEUE_REDIS_ENABLED=false "
    "(python manage.py queues mode in-process) to fall back to the in-process queue, "
    "check Redis and restart the workers.",
    Kind.DEAD_LETTER: "Runbook 'Dead-letter Alert': after the fix, replay the jobs with "
    "POST /integrations/{queue}/deadletter/replay or the dashboard's Replay dead-letter.",
    Kind.TELEMETRY_SILENT: "Runbook 'OTEL stil': check the network ACLs and OTEL_ENABLED, restart "
    "the backend and look for 'Telemetry initialized' in its logs.",
    Kind.BROKER_UNREACHABLE: "Redis is unreachable: check it (redis-cli -u $REDIS_URL ping) and "
    "switch QUEUE_REDIS_ENABLED=false to keep jobs moving in-process meanwhile.",
    Kind.STALLED: "Jobs are due and nothing takes them: start or restart the workers "
    "(celery -A mrdj worker), check Redis and the worker's log; meanwhile "
    "python manage.py queues mode in-process keeps jobs moving in the web process.",
    Kind.CIRCUIT_OPEN: "The upstream of {queue} is down: check it and its secrets; no job is lost or "
    "dead-lettered meanwhile. After the fix, Queue flushen (/dashboard/) probes it at once.",
}


@dataclass(frozen=True)
class NotificationContent:
    """One notification's texts and figures; stored as JSON in Notification.content.

    Every field has a default because rows written by older versions lack some of them
    (alert_label and limits came with PagerDuty; a smoke test never had figures).
    """

    type: str = ""  # alert, resolved, dr, smoke, or an incident's reminder or update
    event: str = ""  # a Notification.Event
    alert_id: int | None = None
    alert_label: str = ""  # stable per alert: PagerDuty's dedup_key
    incident_id: int | None = None
    queue: str = ""
    kind: str = ""
    severity: str = ""
    title: str = ""
    message: str = ""
    backlog: str = ""
    retry_age: str = ""
    figures: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    dead_letter_new: int = 0
    facts: tuple[tuple[str, str], ...] = ()
    runbook: str = ""
    escalation: str = ""
    started_at: str | None = None  # ISO 8601, as stored
    dashboard_url: str = ""

    def __post_init__(self) -> None:
        # JSON gives lists: as tuples, a stored row reads back equal to what was built.
        object.__setattr__(self, "facts", tuple((name, value) for name, value in self.facts or ()))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NotificationContent:
        """Missing keys take their default and unknown ones are dropped, so every old row renders."""
        names = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["facts"] = [list(fact) for fact in self.facts]
        return data

    @property
    def notes(self) -> list[tuple[str, str]]:
        """The runbook step and the escalation line, labelled, when set: chat services add them last."""
        return [
            (label, text)
            for label, text in (("Runbook", self.runbook), ("Escalation", self.escalation))
            if text
        ]


def _limit(value: int, describe=str) -> str:
    return describe(value) if value else "off"


def backlog_text(figures: dict[str, Any], limits: Limits | None) -> str:
    waiting = figures.get("backlog", 0)
    text = f"{waiting} job{'' if waiting == 1 else 's'} waiting, {figures.get('active', 0)} in flight"
    if limits:
        text += (
            f" (warning at {_limit(limits.warning_backlog)}, critical at {_limit(limits.critical_backlog)})"
        )
    return text


def retry_age_text(figures: dict[str, Any], limits: Limits | None) -> str:
    age = figures.get("retry_age_ms", 0)
    text = f"oldest retry waiting {human_ms(age)}" if age else "no job waiting to retry"
    if limits:
        text += (
            f" (warning at {_limit(limits.warning_retry_age_ms, human_ms)}, "
            f"critical at {_limit(limits.critical_retry_age_ms, human_ms)})"
        )
    return text


def runbook_for(kind: str, severity: str, queue: str) -> str:
    """The playbook sends retry-age alerts of any severity to the 'Backlog Critical' action."""
    if kind in (Kind.BACKLOG, Kind.RETRY_AGE):
        text = RUNBOOK[Kind.BACKLOG, "critical" if kind == Kind.RETRY_AGE else severity]
    else:
        text = RUNBOOK.get(kind, "")
    return text.replace("{queue}", queue or "<queue>")


def dashboard_url() -> str:
    return get_config().value("MRDJ_BASE_URL").rstrip("/") + "/dashboard/"


def _headline(kind: str) -> str:
    if kind == Kind.DEAD_LETTER:
        return DEAD_LETTERED
    if kind in (Kind.BACKLOG, Kind.RETRY_AGE):
        return THRESHOLDS_EXCEEDED
    return {
        Kind.TELEMETRY_SILENT: "telemetry silent: no export within OTEL_SILENCE_ALERT_MS",
        Kind.BROKER_UNREACHABLE: "queue broker (Redis) unreachable",
        Kind.CIRCUIT_OPEN: "upstream down: circuit open",
        Kind.STALLED: "queue stalled: jobs are due and no try starts",
    }.get(kind, kind)


def _facts(
    queue: str, severity: str, figures: dict[str, Any], limits: Limits | None
) -> list[tuple[str, str]]:
    return [
        ("Queue", queue),
        ("Severity", severity),
        ("Backlog", backlog_text(figures, limits)),
        ("Retry age", retry_age_text(figures, limits)),
        ("Dead-letter", f"{figures.get('dead_letter', 0)} jobs"),
    ]


def for_alert(alert: Alert, event: str, *, new_dead: int = 0, escalation: str = "") -> NotificationContent:
    """The content of a notification about alert; figures and limits come from its payload."""
    figures = alert.payload.get("figures", {})
    limits = Limits(**alert.payload["limits"]) if alert.payload.get("limits") else None
    message = _headline(alert.kind)
    if alert.kind == Kind.DEAD_LETTER:
        count = new_dead or figures.get("dead_letter", 0)
        noun = "job" if count == 1 else "jobs"
        message = f"{DEAD_LETTERED}: {count} {noun}" + (
            " since the last alert" if event == Notification.Event.DEAD_LETTER else ""
        )
        message += f", {figures.get('dead_letter', 0)} in dead-letter now"
    facts = _facts(queue := alert.queue or "all queues", alert.severity, figures, limits)
    if alert.kind == Kind.STALLED and alert.payload.get("reason"):
        message += f" ({alert.payload['reason']})"
        facts.append(("Why", alert.payload["reason"]))
    if alert.kind == Kind.CIRCUIT_OPEN:
        since = figures.get("circuit_since") or alert.started_at.isoformat()
        last_error = alert.payload.get("last_error") or "unknown"
        message += f" since {since} (last error: {last_error}); mrdj is {alert.payload.get('doing', '')}"
        facts += [("Circuit open since", since), ("Last error", last_error)]
    if event == Notification.Event.RESOLVED:
        message = f"resolved: {_headline(alert.kind)}"
    elif event == Notification.Event.ESCALATED:
        message = f"escalated to critical: {message}"
    elif event == Notification.Event.ACKNOWLEDGED:
        message = f"{message}, acknowledged by {alert.acknowledged_by_name or 'someone'}"
    resolved = event == Notification.Event.RESOLVED
    return NotificationContent(
        type="resolved" if resolved else "alert",
        event=event,
        alert_id=alert.pk,
        alert_label=alert.label,
        queue=queue,
        kind=alert.kind,
        severity="resolved" if resolved else alert.severity,
        title=f"[RESOLVED] {queue}: {_headline(alert.kind)}"
        if resolved
        else f"[{alert.severity.upper()}] {queue}: {message}",
        message=message,
        backlog=backlog_text(figures, limits),
        retry_age=retry_age_text(figures, limits),
        figures={key: figures.get(key, 0) for key in ("backlog", "active", "retry_age_ms", "dead_letter")},
        limits=limits.as_dict() if limits else {},
        dead_letter_new=new_dead,
        facts=tuple(facts),
        runbook="" if resolved else runbook_for(alert.kind, alert.severity, alert.queue),
        escalation=escalation,
        started_at=alert.started_at.isoformat(),
        dashboard_url=dashboard_url(),
    )


def for_dr(reason: str, alerts: list[Alert]) -> NotificationContent:
    queues = sorted({alert.queue or "all queues" for alert in alerts}) or ["all queues"]
    # One line per queue: its alerts of several kinds carry the same figures.
    per_queue = {alert.queue: alert for alert in sorted(alerts, key=lambda a: a.started_at)}
    alerts = [per_queue[queue] for queue in sorted(per_queue)]
    message = f"Activate the DR plan: {reason}"
    started = min((alert.started_at for alert in alerts), default=None)
    return NotificationContent(
        type="dr",
        event=Notification.Event.DR,
        queue=", ".join(queues),
        kind="dr",
        severity="critical",
        title=f"[CRITICAL] {message}",
        message=message,
        backlog="; ".join(
            f"{alert.queue or 'all'}: {backlog_text(alert.payload.get('figures', {}), None)}"
            for alert in alerts
        )
        or "no queue figures",
        retry_age="; ".join(
            f"{alert.queue or 'all'}: {retry_age_text(alert.payload.get('figures', {}), None)}"
            for alert in alerts
        )
        or "no queue figures",
        facts=(("Queues", ", ".join(queues)), ("Severity", "critical"), ("Reason", reason)),
        runbook=f"Follow the DR runbook {DR_RUNBOOK}: the Incident Commander opens the DR bridge "
        "in #dr-war-room and sets the update cadence (at least every 15 minutes).",
        escalation=get_config().value("ALERT_ESCALATION_CRITICAL"),
        started_at=started.isoformat() if started else None,
        dashboard_url=dashboard_url(),
    )


SMOKE = {"type": "smoke", "message": "alert-test"}  # the generic receiver gets exactly this


def for_smoke() -> NotificationContent:
    return NotificationContent(
        type=SMOKE["type"],
        event=Notification.Event.SMOKE,
        queue="-",
        severity="info",
        title="mrdj alert test",
        message=SMOKE["message"],
        backlog="-",
        retry_age="-",
        dashboard_url=dashboard_url(),
    )

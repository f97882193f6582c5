"""What the dashboard shows, assembled from the apps below; views only render it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.paginator import Paginator
from django.utils import timezone

from alerting import content, evaluation, lifecycle, targets
from alerting.models import SEVERITY_RANK, Alert, Delivery, Notification, Silence
from alerting.thresholds import limits_by_queue
from dashboard import job_pages
from integrations import handoff, heartbeat, operations, stalls
from integrations.models import QueueCounter, Status
from integrations.queues import QUEUES, Queue
from mrdj import telemetry
from mrdj.config import ConfigError, describe_invalid, get_config
from mrdj.flags import describe, is_enabled
from mrdj.health import Check, check_database, check_redis
from mrdj.times import human_delta, human_ms, shown

MANUAL_STEPS = [
    Check(
        "chaos test",
        False,
        "by hand: kill the backend and a worker; the queue resumes without loss "
        "(tests/test_celery_queue.py does this in CI)",
    ),
    Check("front-end tests", False, "by hand: npm test and pnpm lint in mr-dj-eds-components"),
]


def queue_cards() -> dict[str, Any]:
    """/metrics/queues plus, per queue, its severity against its limits, the runbook hint, and
    what stops it from flowing (nothing consumes it, no upstream, invalid configuration)."""
    figures = operations.queue_figures()
    limits = limits_by_queue(list(figures["queues"]))
    counters = QueueCounter.objects.counts()  # flush moves the jobs waiting to retry
    consumer = consumer_problem()
    invalid = describe_invalid()
    cards = []
    for name, numbers in figures["queues"].items():
        conditions = evaluation.judge_queue(name, numbers, limits[name])
        conditions += evaluation.circuit_conditions({name: numbers})
        firing = [c for c in conditions if c.severity]
        worst = max(firing, key=lambda c: SEVERITY_RANK[c.severity], default=None)
        severity = worst.severity if worst else "ok"
        problems = queue_problems(QUEUES[name], numbers["enabled"], consumer) + invalid
        if problems:
            severity = "critical"
        retrying = counters.get(name, {}).get(Status.RETRY, 0)
        cards.append(
            {
                "queue": name,
                **numbers,
                "problems": problems,
                "causes": recent_causes(name) if numbers["dead_letter"] else [],
                "waiting_retry": retrying,
                "flush_text": flush_text(numbers["backlog"], retrying),
                "retry_age": human_ms(numbers["retry_age_ms"]),
                "oldest_pending_age": human_ms(numbers["oldest_pending_age_ms"]),
                "severity": severity,
                "problem": worst.kind if worst else "",
                "hint": content.runbook_for(worst.kind, severity, name) if worst else "",
                "flag": QUEUES[name].flag,
                "enabled_text": _enabled_text(QUEUES[name].flag),
                "limits": limits[name].as_dict(),
                "upstream_text": upstream_text(numbers),
                "last_error_text": numbers["last_error"] or "none",
            }
        )
    return {
        "generated_at": figures["generated_at"],
        "generated_at_text": shown(timezone.now()),
        "queue_mode": figures["queue_mode"],
        "queues": cards,
    }


def consumer_problem() -> str:
    """Why nothing takes jobs off the queues, or "" when something does."""
    if handoff.uses_broker():
        redis = check_redis()
        if not redis.ok:
            return f"nothing consumes it: Redis, the broker, does not answer ({redis.detail})"
    worker = worker_check()
    if not worker.ok:
        return f"nothing consumes it: {worker.detail}"
    return ""


def queue_problems(queue: Queue, enabled: bool, consumer: str) -> list[str]:
    """What keeps an enabled queue from delivering, in words, for its card."""
    if not enabled:
        return []
    problems = [consumer] if consumer else []
    if not queue.upstream_url():
        problems.append(f"{queue.url_variable} is not set: every try fails until it is (Configuration tab)")
    if not queue.upstream_token():
        problems.append(f"{queue.token_variable} is not set: the upstream refuses jobs without it")
    return problems


def recent_causes(queue: str) -> list[str]:
    """The top causes among the newest dead-letter jobs, in words, for the card."""
    causes = job_pages.dead_letter_causes(queue, 3, among=500)
    return [f"{cause.text} ({cause.count} job{'s' if cause.count != 1 else ''})" for cause in causes]


def flush_text(backlog: int, retrying: int) -> str:
    """What Flush queue moves: only the jobs waiting to retry (the others are due already)."""
    if not retrying:
        return f"{backlog} waiting, none of them retrying: flush has nothing to move (it still lifts a pause)"
    return f"{backlog} waiting, {retrying} of them retrying: flush retries those {retrying} now"


def upstream_text(numbers: dict[str, Any]) -> str:
    """The circuit breaker and the pause in words, for the queue card."""
    if numbers["in_flight_limit"] is None:
        limits = "its limits are invalid (manage.py check names the variable)"
    else:
        limits = f"at most {numbers['in_flight_limit']} in flight"
    if numbers["rate_limit_per_s"]:
        limits += f", {numbers['rate_limit_per_s']:g} tries/s"
    if numbers["circuit"] == "open":
        since = _local_time(numbers["circuit_since"])
        return (
            f"DOWN since {since}: circuit open, jobs held (no tries counted against them), "
            "one probe per interval; Flush queue probes now"
        )
    if numbers["circuit"] == "half_open":
        return "DOWN: circuit half-open, a probe is in flight"
    if numbers["paused_until"]:
        return f"paused by the upstream (Retry-After) until {_local_time(numbers['paused_until'])}"
    return f"up: circuit closed, {limits}"


def _local_time(iso: str | None) -> str:
    if not iso:
        return "?"
    return shown(datetime.fromisoformat(iso.replace("Z", "+00:00")))


@dataclass(frozen=True)
class AlertRow:
    alert: Alert
    age: str
    escalates_in: str
    jira_url: str


def _jira_url(key: str) -> str:
    base = get_config().value("ALERT_JIRA_ENDPOINT").rstrip("/")
    return f"{base}/browse/{key}" if base and key else ""


def firing_alerts(now: datetime | None = None) -> list[AlertRow]:
    now = now or timezone.now()
    timing = lifecycle.Timing.read()
    rows = []
    firing = Alert.objects.filter(state=Alert.State.FIRING).order_by("started_at")
    for alert in sorted(firing, key=lambda a: -SEVERITY_RANK[a.severity]):  # critical first
        escalates = ""
        told, escalated = (
            SEVERITY_RANK[alert.notified_severity or None],
            SEVERITY_RANK[alert.escalated_severity or None],
        )
        if not alert.acknowledged_at and alert.announced_at and escalated < told:
            left = alert.announced_at + timing.ack_deadline(alert.notified_severity) - now
            escalates = human_delta(left) if left > timedelta(0) else "now"
        rows.append(
            AlertRow(alert, human_delta(now - alert.started_at), escalates, _jira_url(alert.jira_key))
        )
    return rows


def alerts_page(silences_page: str | None = None) -> dict[str, Any]:
    now = timezone.now()
    return {
        "firing": firing_alerts(now),
        "silences": Paginator(Silence.objects.filter(ends_at__gt=now).order_by("ends_at", "pk"), 20).get_page(
            silences_page
        ),
        "resolved": list(Alert.objects.filter(state=Alert.State.RESOLVED).order_by("-resolved_at")[:20]),
        "deliveries": list(Delivery.objects.select_related("notification").order_by("-id")[:30]),
        "queues": list(QUEUES),
        "last_smoke": last_smoke(),
    }


def last_smoke() -> Notification | None:
    return Notification.objects.filter(event=Notification.Event.SMOKE).order_by("-created_at", "-id").first()


def smoke_passed(notification: Notification | None) -> bool:
    if notification is None:
        return False
    statuses = list(notification.deliveries.values_list("status", flat=True))
    return bool(statuses) and all(status == Delivery.Status.SENT for status in statuses)


def worker_check() -> Check:
    mode = handoff.mode()
    kind = "celery" if mode == "celery" else "in-process"
    consuming = heartbeat.alive(kind)
    if consuming:
        seconds = int((timezone.now() - max(w.seen_at for w in consuming)).total_seconds())
        return Check("worker", True, f"{len(consuming)} {mode} worker process(es), last seen {seconds} s ago")
    within = int(heartbeat.ALIVE_WITHIN.total_seconds())
    return Check("worker", False, f"no {mode} worker seen in the last {within} s")


def telemetry_check() -> Check:
    state = telemetry.status(with_last_export=True)
    if state.state == "off":
        return Check("telemetry", True, f"off ({state.reason})")
    if state.state == "misconfigured":
        return Check("telemetry", False, f"misconfigured: {state.reason}")
    silence_ms = telemetry.silence_ms()
    if state.last_export and timezone.now() - state.last_export < timedelta(milliseconds=silence_ms):
        return Check("telemetry", True, f"exporting; last export {shown(state.last_export)}")
    return Check("telemetry", False, f"enabled, but nothing exported in the last {human_ms(silence_ms)}")


def webhook_check() -> Check:
    try:
        configured = targets.webhook_targets()
    except ConfigError as error:
        return Check("webhooks", False, str(error))
    if not configured:
        return Check("webhooks", False, "ALERT_WEBHOOK_URLS is empty: alerts reach no one")
    smoke = last_smoke()
    if smoke is None:
        return Check(
            "webhooks", False, f"{len(configured)} configured, never smoke-tested: send a test alert"
        )
    passed = smoke_passed(smoke)
    result = "passed" if passed else "FAILED"
    detail = f"{len(configured)} configured; last smoke test {shown(smoke.created_at)} {result}"
    return Check("webhooks", passed, detail)


def backlog_check() -> Check:
    cards = queue_cards()["queues"]
    over = [
        f"{card['queue']} {card['backlog']} >= {card['limits']['critical_backlog']}"
        for card in cards
        if card["limits"]["critical_backlog"] and card["backlog"] >= card["limits"]["critical_backlog"]
    ]
    if over:
        return Check("backlog", False, "at or over critical: " + "; ".join(over))
    figures = ", ".join(f"{card['queue']} {card['backlog']}" for card in cards)
    return Check("backlog", True, f"under the critical thresholds ({figures})")


def health() -> dict[str, Any]:
    return {
        "checks": [check_database(), check_redis(), worker_check(), telemetry_check()],
        "telemetry": telemetry.status(with_last_export=True),
        "workers": heartbeat.alive(),
        "queue_mode": handoff.mode(),
    }


def _enabled_text(flag: str) -> str:
    """A flag whose value cannot be used says so (it runs on its last good value meanwhile)."""
    state = describe(flag)
    if state.error:
        running = "enabled" if is_enabled(flag) else "disabled"
        return f"{flag} invalid ({running} on its last good value): see Configuration"
    return "enabled" if state.enabled else f"disabled ({flag} off)"


def flow_check() -> Check:
    stalled = stalls.describe()
    if stalled:
        return Check("queues flowing", False, "; ".join(stalled))
    return Check("queues flowing", True, "every queue with due jobs started a try recently")


def readiness() -> list[Check]:
    """Playbook section 8 as live checks (MANUAL_STEPS are the two only a person can do)."""
    return [
        configuration_check(),
        upstream_check(),
        check_redis(),
        backlog_check(),
        worker_check(),
        flow_check(),
        webhook_check(),
        telemetry_check(),
    ]


def upstream_check() -> Check:
    """Every enabled queue knows where to send its jobs (else each try dead-letters them)."""
    missing = [
        queue.url_variable for queue in QUEUES.values() if is_enabled(queue.flag) and not queue.upstream_url()
    ]
    if missing:
        return Check(
            "upstreams", False, f"{', '.join(missing)} not set: those queues' jobs cannot be delivered"
        )
    return Check("upstreams", True, "every enabled queue has its upstream URL")


def configuration_check() -> Check:
    invalid = describe_invalid()
    if invalid:
        return Check("configuration", False, "; ".join(invalid))
    return Check("configuration", True, "every value in the environment and managed.env can be used")

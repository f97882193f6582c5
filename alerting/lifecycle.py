"""The life of an alert: firing, escalating, re-sent when nobody acknowledges it, resolved after a
quiet period; plus the DR trigger, silences, acknowledgements and the smoke test.

Every step that sends something first wins a conditional UPDATE (or a unique
constraint), so two processes evaluating at the same moment send it once.
Functions take now, so tests move time instead of waiting for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from alerting import content, evaluation, jira, notify, sender, signals
from alerting.evaluation import Condition
from alerting.models import (
    ALL_QUEUES,
    SEVERITY_RANK,
    Alert,
    DrActivation,
    Kind,
    Notification,
    Severity,
    Silence,
    ThrottleMark,
)
from mrdj.config import get_config
from mrdj.times import human_delta

Event = Notification.Event


@dataclass(frozen=True)
class Timing:
    throttle: timedelta
    resolve_quiet: timedelta
    ack_warning: timedelta
    ack_critical: timedelta
    dr_after: timedelta
    escalation_warning: str
    escalation_critical: str

    @classmethod
    def read(cls) -> Timing:
        config = get_config()
        return cls(
            throttle=config.duration("ALERT_THROTTLE_MS"),
            resolve_quiet=config.duration("ALERT_RESOLVE_QUIET_MS"),
            ack_warning=config.duration("ALERT_ACK_WARNING_MS"),
            ack_critical=config.duration("ALERT_ACK_CRITICAL_MS"),
            dr_after=config.duration("ALERT_DR_AFTER_MS"),
            escalation_warning=config.value("ALERT_ESCALATION_WARNING"),
            escalation_critical=config.value("ALERT_ESCALATION_CRITICAL"),
        )

    def ack_deadline(self, severity: str) -> timedelta:
        return self.ack_critical if severity == Severity.CRITICAL else self.ack_warning

    def escalation_target(self, severity: str) -> str:
        return self.escalation_critical if severity == Severity.CRITICAL else self.escalation_warning


# --- Evaluation


def tick(now: datetime | None = None, conditions: list[Condition] | None = None) -> list[Notification]:
    """Where no beat runs (the queues in-process): the figures and the upkeep in one go."""
    now = now or timezone.now()
    return evaluate(now, conditions) + upkeep(now)


def upkeep(now: datetime | None = None) -> list[Notification]:
    """Beat's tick: what has deadlines of minutes (escalations, DR, Jira, the incidents). The
    figures are the evaluator's; failed sends are the caller's (sender.resend_due())."""
    now = now or timezone.now()
    timing = Timing.read()
    sent = _escalate_unacknowledged(now, timing) + _dr_trigger(now, timing)
    for pk in jira.due(now, jira.JiraSettings.read()):
        sender.in_background(jira.sync, pk, now)
    # Receivers' errors are logged by Django and do not undo the alerts' progress.
    signals.ticked.send_robust(sender=Alert, now=now)
    return sent


def evaluate(now: datetime | None = None, conditions: list[Condition] | None = None) -> list[Notification]:
    """Compare every queue with its limits and move each alert along its lifecycle."""
    now = now or timezone.now()
    timing = Timing.read()
    if conditions is None:
        conditions = evaluation.current_conditions()
    firing = {(alert.queue, alert.kind): alert for alert in Alert.objects.filter(state=Alert.State.FIRING)}
    sent: list[Notification] = []
    for condition in conditions:
        alert = firing.get((condition.queue, condition.kind))
        if condition.severity:
            alert = _still_firing(alert, condition, now) if alert else _open(condition, now)
            if alert is not None:
                sent += _announce(alert, condition, now, timing)
        elif alert is not None:
            sent += _clear(alert, now, timing)
    signals.evaluated.send_robust(sender=Alert, now=now)
    return sent


def _open(condition: Condition, now: datetime) -> Alert | None:
    critical = condition.severity == Severity.CRITICAL
    try:
        with transaction.atomic():
            return Alert.objects.create(
                queue=condition.queue,
                kind=condition.kind,
                severity=condition.severity,
                started_at=now,
                critical_since=now if critical else None,
                payload={**condition.payload, "peak": evaluation.peak({}, condition)},
            )
    except IntegrityError:  # another evaluator opened it a moment ago
        return Alert.objects.filter(
            queue=condition.queue, kind=condition.kind, state=Alert.State.FIRING
        ).first()


def _still_firing(alert: Alert, condition: Condition, now: datetime) -> Alert:
    critical = condition.severity == Severity.CRITICAL
    payload = {**condition.payload, "peak": evaluation.peak(alert.payload, condition)}
    alert.severity, alert.payload, alert.clear_since = condition.severity, payload, None
    alert.critical_since = (alert.critical_since or now) if critical else None
    Alert.objects.filter(pk=alert.pk).update(
        severity=alert.severity,
        payload=alert.payload,
        clear_since=None,
        critical_since=alert.critical_since,
    )
    return alert


def claim_throttle(queue: str, kind: str, severity: str, now: datetime, window: timedelta) -> bool:
    """True for exactly one caller per window, whatever the number of processes asking."""
    key = {"queue": queue, "kind": kind, "severity": severity}
    if ThrottleMark.objects.filter(**key, sent_at__lte=now - window).update(sent_at=now):
        return True
    if ThrottleMark.objects.filter(**key).exists():
        return False
    try:
        with transaction.atomic():
            ThrottleMark.objects.create(**key, sent_at=now)
    except IntegrityError:
        return False
    return True


def _mark_throttle(queue: str, kind: str, severity: str, now: datetime) -> None:
    ThrottleMark.objects.update_or_create(
        queue=queue, kind=kind, severity=severity, defaults={"sent_at": now}
    )


def _announce(alert: Alert, condition: Condition, now: datetime, timing: Timing) -> list[Notification]:
    severity = condition.severity
    silence = Silence.covering(alert.queue, now)
    dead = condition.payload.get("figures", {}).get("dead_letter", 0)
    if SEVERITY_RANK[severity] > SEVERITY_RANK[alert.notified_severity or None]:
        if silence is not None:
            return _record_silenced(alert, severity, now, silence)
        escalation = bool(alert.notified_severity)
        if escalation:
            _mark_throttle(alert.queue, alert.kind, severity, now)  # escalations are never throttled
        elif not claim_throttle(alert.queue, alert.kind, severity, now, timing.throttle):
            return []  # sent again within the window: the next evaluation after it sends it
        won = Alert.objects.filter(pk=alert.pk, notified_severity=alert.notified_severity).update(
            notified_severity=severity, announced_at=now, last_notified_at=now, dead_letter_notified=dead
        )
        if not won:
            return []
        event = Event.ESCALATED if escalation else Event.FIRING
        alert.notified_severity, alert.announced_at, alert.last_notified_at = severity, now, now
        return [_notify(alert, event, content.for_alert(alert, event), now)]
    if alert.kind == Kind.DEAD_LETTER:
        return _more_dead_letters(alert, dead, now, timing, silence)
    return []


def _record_silenced(alert: Alert, severity: str, now: datetime, silence: Silence) -> list[Notification]:
    """Once per severity: the dashboard shows it was held back, without a row per evaluation."""
    if (
        not Alert.objects.filter(pk=alert.pk)
        .exclude(silenced_severity=severity)
        .update(silenced_severity=severity)
    ):
        return []
    event = Event.ESCALATED if alert.notified_severity else Event.FIRING
    return [
        notify.notify(
            alert=alert,
            event=event,
            severity=severity,
            content=content.for_alert(alert, event),
            now=now,
            silence=silence,
        )
    ]


def _more_dead_letters(
    alert: Alert, dead: int, now: datetime, timing: Timing, silence: Silence | None
) -> list[Notification]:
    """Jobs that died since the last notification: one summary per throttle window."""
    told = alert.dead_letter_notified
    if dead < told:  # replayed: count new deaths from here
        Alert.objects.filter(pk=alert.pk, dead_letter_notified=told).update(dead_letter_notified=dead)
        return []
    if dead == told or silence is not None:
        return []
    if not claim_throttle(alert.queue, alert.kind, alert.notified_severity, now, timing.throttle):
        return []
    if not Alert.objects.filter(pk=alert.pk, dead_letter_notified=told).update(
        dead_letter_notified=dead, last_notified_at=now
    ):
        return []
    alert.dead_letter_notified, alert.last_notified_at = dead, now
    event = Event.DEAD_LETTER
    return [_notify(alert, event, content.for_alert(alert, event, new_dead=dead - told), now)]


def _notify(
    alert: Alert, event: str, body: content.NotificationContent, now: datetime, **options
) -> Notification:
    return notify.notify(alert=alert, event=event, severity=alert.severity, content=body, now=now, **options)


def _clear(alert: Alert, now: datetime, timing: Timing) -> list[Notification]:
    if alert.clear_since is None:
        Alert.objects.filter(pk=alert.pk).update(clear_since=now)
        return []
    if now - alert.clear_since < timing.resolve_quiet:
        return []
    if not Alert.objects.filter(pk=alert.pk, state=Alert.State.FIRING).update(
        state=Alert.State.RESOLVED, resolved_at=now
    ):
        return []
    alert.state, alert.resolved_at = Alert.State.RESOLVED, now
    if not alert.notified_severity:
        return []  # nobody was told it started; nobody needs telling it ended
    silence = Silence.covering(alert.queue, now)
    return [_notify(alert, Event.RESOLVED, content.for_alert(alert, Event.RESOLVED), now, silence=silence)]


def _escalate_unacknowledged(now: datetime, timing: Timing) -> list[Notification]:
    """Past the acknowledge deadline of its severity (playbook section 4): send it again, naming
    the next role. Once per severity, never throttled."""
    sent = []
    waiting = Alert.objects.filter(
        state=Alert.State.FIRING,
        acknowledged_at__isnull=True,
        announced_at__isnull=False,
        clear_since__isnull=True,  # recovering: waiting out its quiet period, not worth a page
    )
    for alert in waiting.exclude(notified_severity=""):
        severity = alert.notified_severity
        deadline = timing.ack_deadline(severity)
        if now - alert.announced_at < deadline:
            continue
        if SEVERITY_RANK[alert.escalated_severity or None] >= SEVERITY_RANK[severity]:
            continue
        if Silence.covering(alert.queue, now) is not None:
            continue
        if not Alert.objects.filter(pk=alert.pk, escalated_severity=alert.escalated_severity).update(
            escalated_severity=severity
        ):
            continue
        target = timing.escalation_target(severity)
        waited = human_delta(deadline)
        line = f"Not acknowledged within {waited}: escalating to {target}"
        channels = (target,) if target.startswith("#") else ()
        body = content.for_alert(alert, Event.UNACKNOWLEDGED, escalation=line)
        sent.append(_notify(alert, Event.UNACKNOWLEDGED, body, now, extra_channels=channels))
    return sent


# --- DR trigger


def dr_reasons(firing: list[Alert], now: datetime, timing: Timing) -> list[str]:
    """Playbook 5.3: a critical alert lasting over ALERT_DR_AFTER_MS, several queues failing
    at once, or telemetry blind while something is wrong."""
    reasons = []
    critical = [alert for alert in firing if alert.severity == Severity.CRITICAL and alert.critical_since]
    lasting = [alert for alert in critical if now - alert.critical_since >= timing.dr_after]
    if lasting:
        names = ", ".join(sorted({alert.queue or "all queues" for alert in lasting}))
        reasons.append(f"critical alert on {names} for over {human_delta(timing.dr_after)}")
    failing = sorted({alert.queue for alert in critical if alert.queue})
    if len(failing) >= 2:
        reasons.append(f"queues {' and '.join(failing)} critical at the same time")
    silent = any(alert.kind == Kind.TELEMETRY_SILENT for alert in firing)
    if silent and any(alert.kind != Kind.TELEMETRY_SILENT for alert in firing):
        reasons.append("telemetry silent while an alert fires: root-cause analysis is blind")
    return reasons


def _dr_trigger(now: datetime, timing: Timing) -> list[Notification]:
    """Once per incident: the activation stays open until every alert has resolved."""
    firing = list(Alert.objects.filter(state=Alert.State.FIRING))
    if not firing:
        DrActivation.objects.filter(open=True).update(open=None, ended_at=now)
        return []
    if DrActivation.objects.filter(open=True).exists():
        return []
    reasons = dr_reasons(firing, now, timing)
    if not reasons:
        return []
    reason = "; ".join(reasons)
    try:
        with transaction.atomic():
            activation = DrActivation.objects.create(reason=reason[:300], triggered_at=now)
            activation.alerts.set(firing)
    except IntegrityError:
        return []  # another evaluator triggered it
    silence = Silence.covering(ALL_QUEUES, now)
    body = content.for_dr(reason, firing)
    return [
        notify.notify(
            alert=None, event=Event.DR, severity=Severity.CRITICAL, content=body, now=now, silence=silence
        )
    ]

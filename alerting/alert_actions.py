"""What an operator does to alerts: acknowledge one, silence a queue, send the smoke test.
Each leaves an audit record; acknowledging tells PagerDuty and the incidents (signals)."""

from __future__ import annotations

from concurrent.futures import wait
from datetime import datetime
from typing import Any

from django.utils import timezone

from alerting import content, notify, sender, signals, targets
from alerting.models import Alert, Delivery, Notification, Silence
from mrdj import audit

Event = Notification.Event


def acknowledge(alert: Alert, actor: Any, now: datetime | None = None) -> bool:
    """Record the first responder; False when someone acknowledged it before, or it resolved
    meanwhile (only the acknowledgement fields change: it never reopens an alert)."""
    now = now or timezone.now()
    fields = audit.actor_fields(actor)
    won = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True, state=Alert.State.FIRING).update(
        acknowledged_at=now, acknowledged_by=fields["user"], acknowledged_by_name=fields["actor"]
    )
    alert.refresh_from_db()
    if won:
        audit.record(
            "alert.ack",
            actor=actor,
            target=f"alert {alert.pk}: {alert.queue or 'all'} {alert.kind}",
            after={"severity": alert.severity, "state": alert.state, "jira": alert.jira_key},
            at=now,
        )
        notify.notify_acknowledged(alert, now)  # PagerDuty's alert is acknowledged too
        signals.acknowledged.send_robust(sender=Alert, alert=alert, actor=actor, now=now)
    return bool(won)


def create_silence(
    queue: str, ends_at: datetime, reason: str, actor: Any, now: datetime | None = None
) -> Silence:
    """Raises ValidationError naming the field when the silence makes no sense."""
    now = now or timezone.now()
    silence = Silence(queue=queue, reason=reason.strip(), starts_at=now, ends_at=ends_at)
    silence.created_by = audit.actor_fields(actor)["actor"]
    silence.full_clean()
    silence.save()
    audit.record(
        "alert.silence",
        actor=actor,
        target=queue or "all queues",
        after={"until": ends_at.isoformat(), "reason": silence.reason},
        at=now,
    )
    return silence


def expire_silence(silence: Silence, actor: Any, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    before = silence.ends_at
    if not Silence.objects.filter(pk=silence.pk, ends_at__gt=now).update(ends_at=now):
        return False
    silence.ends_at = now
    audit.record(
        "alert.silence.expire",
        actor=actor,
        target=silence.queue or "all queues",
        before={"until": before.isoformat()},
        after={"until": now.isoformat()},
        at=now,
    )
    return True


def send_test_alert(actor: Any) -> list[Delivery]:
    """The playbook's smoke test, to every ALERT_WEBHOOK_URLS target; waits for the answers."""
    now = timezone.now()
    targets.webhook_targets()  # a broken ALERT_WEBHOOK_URLS is reported, not taken for an empty one
    notification = notify.notify(
        alert=None, event=Event.SMOKE, severity="", content=content.for_smoke(), now=now, send=False
    )
    deliveries = list(notification.deliveries.all())
    wait(sender.submit(delivery.pk for delivery in deliveries))
    # A smoke test reports now; it is not sent again later.
    notification.deliveries.filter(status=Delivery.Status.RETRY).update(status=Delivery.Status.FAILED)
    audit.record("alert.test", actor=actor, target="ALERT_WEBHOOK_URLS", after={"targets": len(deliveries)})
    return list(notification.deliveries.order_by("pk"))

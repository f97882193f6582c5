"""Turn one notification into deliveries, one per target, and hand them to the sender."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from alerting import content, sender, targets
from alerting.content import NotificationContent
from alerting.models import Alert, Delivery, Notification, Silence
from alerting.transports import TRANSPORTS
from alerting.transports.pagerduty import ACTOR_PREFIX
from mrdj.config import ConfigError

log = logging.getLogger(__name__)
# They end what was announced: sent to the targets of the highest severity announced.
CLOSING = (Notification.Event.RESOLVED, Notification.Event.ACKNOWLEDGED)


def _plan(
    alert: Alert | None, event: str, severity: str, silenced: bool, extra_channels: tuple[str, ...]
) -> list[tuple[targets.Target, str]]:
    """The targets whose service takes this event (under a silence: only what closes an alert)."""
    if alert is not None and event in CLOSING and alert.notified_severity:
        severity = alert.notified_severity
    try:
        pairs = targets.plan(severity, extra_channels)
    except ConfigError as error:
        log.error("alert not sent, the webhook configuration is invalid: %s", error)
        return []
    return [
        (target, channel) for target, channel in pairs if TRANSPORTS[target.service].receives(event, silenced)
    ]


def notify(
    *,
    alert: Alert | None,
    event: str,
    severity: str,
    content: NotificationContent,
    now: datetime,
    silence: Silence | None = None,
    extra_channels: tuple[str, ...] = (),
    send: bool = True,
) -> Notification:
    """Record the notification and its deliveries; they leave once the transaction commits.

    A silenced notification is recorded without deliveries (but PagerDuty's resolve), so the
    dashboard can show what was held back and why.
    """
    plan = _plan(alert, event, severity, silence is not None, extra_channels)
    with transaction.atomic():
        notification = Notification.objects.create(
            alert=alert,
            event=event,
            severity=severity,
            created_at=now,
            message=content.message[:500],
            content=content.to_json(),
            silenced_by=silence,
        )
        deliveries = Delivery.objects.bulk_create(
            Delivery(
                notification=notification,
                service=target.service,
                target=target.label,
                target_hash=target.fingerprint,
                channel=channel,
                next_attempt_at=timezone.now(),  # sending is real I/O: on the real clock
            )
            for target, channel in plan
        )
        ids = [delivery.pk for delivery in deliveries]
        if send:
            transaction.on_commit(lambda: sender.submit(ids))
    return notification


def notify_acknowledged(alert: Alert, now: datetime) -> Notification | None:
    """Tell the services that track an alert's state (PagerDuty) who acknowledged it. Nothing is
    recorded when none is configured, nor when the acknowledgement came from PagerDuty itself."""
    if not alert.notified_severity or alert.acknowledged_by_name.startswith(ACTOR_PREFIX):
        return None
    event = Notification.Event.ACKNOWLEDGED
    if not _plan(alert, event, alert.severity, False, ()):
        return None
    body = content.for_alert(alert, event)
    return notify(alert=alert, event=event, severity=alert.severity, content=body, now=now)

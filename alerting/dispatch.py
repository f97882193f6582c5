"""Turn one notification into deliveries, one per target, and hand them to the sender."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from alerting import sender, targets
from alerting.models import Alert, Delivery, Notification, Silence
from mrdj.config import ConfigError

log = logging.getLogger(__name__)


def notify(
    *,
    alert: Alert | None,
    event: str,
    severity: str,
    content: dict[str, Any],
    now: datetime,
    silence: Silence | None = None,
    extra_channels: tuple[str, ...] = (),
    send: bool = True,
) -> Notification:
    """Record the notification and its deliveries; they leave once the transaction commits.

    A silenced notification is recorded without deliveries, so the dashboard can show
    what was held back and why.
    """
    try:
        plan = [] if silence else targets.plan(severity, extra_channels)
    except ConfigError as error:
        log.error("alert not sent, the webhook configuration is invalid: %s", error)
        plan = []
    with transaction.atomic():
        notification = Notification.objects.create(
            alert=alert,
            event=event,
            severity=severity,
            created_at=now,
            message=content["message"][:500],
            content=content,
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

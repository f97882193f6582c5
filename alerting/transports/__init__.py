"""One small class per notification service; see base.py for what they share."""

from __future__ import annotations

from alerting.transports.base import Transport, TransportError
from alerting.transports.discord import Discord
from alerting.transports.generic import GenericJson
from alerting.transports.pagerduty import PagerDuty
from alerting.transports.slack import Slack
from alerting.transports.teams import Teams

TRANSPORTS: dict[str, type[Transport]] = {
    "slack": Slack,
    "discord": Discord,
    "teams": Teams,
    "json": GenericJson,
    "pagerduty": PagerDuty,
}

__all__ = ["TRANSPORTS", "Transport", "TransportError"]

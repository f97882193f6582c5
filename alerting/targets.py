"""Where notifications go: ALERT_WEBHOOK_URLS and ALERT_SEVERITY_ROUTE, parsed and checked.

Webhook URLs carry their secret in the path, so a target is shown and stored by
its service and host only, and found again by the fingerprint of its URL. A PagerDuty
entry (pagerduty+<integration key>) has no URL of its own: its secret is the routing key,
sent to ALERT_PAGERDUTY_EVENTS_URL, and its fingerprint is that of the key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from alerting.models import Severity
from mrdj.config import ConfigError, get_config

SERVICES = ("slack", "discord", "teams", "json", "pagerduty")
# "the 32 character Integration Key" (developer.pagerduty.com, Events API v2: Send an Alert Event).
ROUTING_KEY = re.compile(r"[A-Za-z0-9]{32}")


@dataclass(frozen=True)
class Target:
    service: str
    url: str
    secret: str = field(default="", repr=False)  # PagerDuty's routing key; never shown

    @property
    def fingerprint(self) -> str:
        """Of the URL, or of the routing key: a PagerDuty target stays itself if its endpoint moves."""
        identity = f"{self.service}+{self.secret}" if self.secret else self.url
        return hashlib.sha256(identity.encode()).hexdigest()

    @property
    def label(self) -> str:
        """slack hooks.slack.com #1a2b3c: enough to tell targets apart, nothing to abuse."""
        return f"{self.service} {urlsplit(self.url).hostname} #{self.fingerprint[:6]}"


@dataclass(frozen=True)
class Route:
    severity: str
    channel: str = ""
    target: Target | None = None


def detect_service(url: str) -> str:
    """The service a webhook URL belongs to; generic JSON when it is none of the known ones."""
    parts = urlsplit(url)
    host, path = (parts.hostname or "").lower(), parts.path
    if host in ("hooks.slack.com", "hooks.slack-gov.com"):
        return "slack"
    discord = ("discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com")
    if host in discord and path.startswith("/api/webhooks/"):
        return "discord"
    # Teams: Workflows / Power Automate, and the legacy Office 365 connectors.
    if host.endswith((".logic.azure.com", ".api.powerplatform.com", ".webhook.office.com")):
        return "teams"
    if host in ("outlook.office.com", "outlook.office365.com") and path.startswith("/webhook"):
        return "teams"
    return "json"


def parse_target(raw: str, where: str) -> Target:
    """slack+https://... names the service; a plain URL is recognised. where names the entry."""
    service, plus, rest = raw.partition("+")
    if plus and service.lower() == "pagerduty":
        return _pagerduty(rest.strip(), where)
    if plus and service.lower() in SERVICES and "://" in rest:
        service, url = service.lower(), rest
    else:
        service, url = "", raw
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https") or not urlsplit(url).hostname:
        # Never echo the value: it is a webhook URL and may carry a secret.
        prefixes = "+, ".join(SERVICES[:-1])
        raise ConfigError(
            f"{where} is not an http(s) URL (optionally prefixed with {prefixes}+) "
            "nor pagerduty+<integration key>"
        )
    return Target(service or detect_service(url), url)


def _pagerduty(routing_key: str, where: str) -> Target:
    if not ROUTING_KEY.fullmatch(routing_key):
        # Never echo the value: it is the routing key.
        raise ConfigError(
            f"{where}: pagerduty+ takes the 32-character integration key of an Events API v2 "
            "integration (not a URL: the endpoint is ALERT_PAGERDUTY_EVENTS_URL)"
        )
    return Target("pagerduty", get_config().value("ALERT_PAGERDUTY_EVENTS_URL"), routing_key)


def webhook_targets() -> list[Target]:
    entries = get_config().value("ALERT_WEBHOOK_URLS")
    return [parse_target(raw, f"ALERT_WEBHOOK_URLS entry {n}") for n, raw in enumerate(entries, 1)]


def severity_routes() -> list[Route]:
    routes = []
    for n, entry in enumerate(get_config().value("ALERT_SEVERITY_ROUTE"), 1):
        where = f"ALERT_SEVERITY_ROUTE entry {n}"
        severity, _, target = (part.strip() for part in entry.partition(":"))
        if severity.lower() not in Severity.values:
            raise ConfigError(f"{where} must start with warning: or critical:, not {severity[:20]!r}")
        if target.startswith("#"):
            routes.append(Route(severity.lower(), channel=target))
        elif target:
            routes.append(Route(severity.lower(), target=parse_target(target, where)))
        else:
            raise ConfigError(f"{where} names no target: give a #channel or a webhook URL")
    return routes


def default_channel() -> str:
    return get_config().value("ALERT_DEFAULT_CHANNEL")


def plan(severity: str, extra_channels: tuple[str, ...] = ()) -> list[tuple[Target, str]]:
    """(target, Slack channel) pairs for one notification: every webhook, plus the routes of its severity.

    A channel only means something to Slack webhooks, so a channel route adds a copy to
    each Slack target with that channel; a URL route adds that webhook.
    """
    webhooks = webhook_targets()
    slack = [target for target in webhooks if target.service == "slack"]
    pairs = [(target, default_channel() if target.service == "slack" else "") for target in webhooks]
    channels = [route.channel for route in severity_routes() if route.severity == severity and route.channel]
    for channel in [*channels, *extra_channels]:
        pairs += [(target, channel) for target in slack]
    pairs += [
        (route.target, "")
        for route in severity_routes()
        if route.severity == severity and route.target is not None
    ]
    unique: dict[tuple[str, str], tuple[Target, str]] = {}
    for target, channel in pairs:
        unique.setdefault((target.fingerprint, channel), (target, channel))
    return list(unique.values())


def find(fingerprint: str) -> Target | None:
    """The configured target with this fingerprint, if it is still configured."""
    routed = [route.target for route in severity_routes() if route.target is not None]
    return next((t for t in [*webhook_targets(), *routed] if t.fingerprint == fingerprint), None)

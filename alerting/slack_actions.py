"""Acknowledge from Slack: the Acknowledge button on an alert message comes back here.

Slack signs each interaction (https://api.slack.com/authentication/verifying-requests-from-slack):
X-Slack-Signature is "v0=" + HMAC-SHA256 of "v0:<X-Slack-Request-Timestamp>:<raw body>" with
the app's signing secret, and a timestamp older than five minutes is refused (a replay).
The body is form-encoded, with the interaction as JSON in its "payload" field
(https://api.slack.com/reference/interaction-payloads/block-actions). The answer goes to
the interaction's response_url: the original message, replaced, says who acknowledged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from django.contrib.auth import get_user_model
from django.db import close_old_connections

from alerting import alert_actions
from alerting.models import Alert, SlackUser
from alerting.transports.slack import ACK_ACTION
from mrdj import http
from mrdj.api import BadRequest
from mrdj.config import get_config
from mrdj.times import shown

log = logging.getLogger(__name__)
WINDOW_SECONDS = 5 * 60


class Forged(Exception):
    """No valid signature, or an old timestamp: nothing is done."""


@dataclass(frozen=True)
class Interaction:
    slack_user: str
    slack_name: str
    alert_id: int
    response_url: str
    blocks: list[dict[str, Any]]


def verify(body: bytes, timestamp: str, signature: str, now: float | None = None) -> None:
    secret = get_config().value("SLACK_SIGNING_SECRET")
    if not secret:
        raise Forged("SLACK_SIGNING_SECRET is not set: Slack actions are off")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise Forged("X-Slack-Request-Timestamp is missing")
    if abs((now or time.time()) - int(timestamp)) > WINDOW_SECONDS:
        raise Forged("the request is older than five minutes")
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Forged("X-Slack-Signature does not match")


def parse(body: bytes) -> Interaction | None:
    """The Acknowledge click in the payload, None for any other interaction."""
    try:
        raw = parse_qs(body.decode("utf-8"), strict_parsing=True).get("payload", [""])[0]
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("payload: a form field holding the interaction as JSON is expected") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None
    action = next((a for a in payload.get("actions") or [] if isinstance(a, dict)), {})
    if action.get("action_id") != ACK_ACTION:
        return None
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    value, url = str(action.get("value", "")), payload.get("response_url")
    if not (value.isascii() and value.isdigit() and len(value) < 19) or not isinstance(url, str):
        raise BadRequest("payload: the action's value (an alert id) or response_url is missing")
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    blocks = [b for b in message.get("blocks") or [] if isinstance(b, dict)]
    return Interaction(str(user.get("id", "")), str(user.get("username") or user.get("name") or ""),
                       int(value), url, blocks)  # fmt: skip


def mrdj_user(slack_user: str):
    """The mapping in the admin first; else the same e-mail address, when a bot token lets mrdj
    ask Slack for it (users.info); None when neither says who it is."""
    mapped = SlackUser.objects.filter(slack_user_id=slack_user).select_related("user").first()
    if mapped:
        return mapped.user
    email = _slack_email(slack_user)
    if not email:
        return None
    return get_user_model().objects.filter(email__iexact=email, is_active=True, is_staff=True).first()


def _slack_email(slack_user: str) -> str:
    config = get_config()
    token = config.value("SLACK_BOT_TOKEN")
    if not token or not slack_user:
        return ""
    url = config.value("SLACK_API_URL").rstrip("/") + "/users.info?" + urlencode({"user": slack_user})
    try:
        answer = http.request(
            "GET", url, headers={"Authorization": f"Bearer {token}"}, connect_timeout=2, read_timeout=3
        )
        data = json.loads(answer.body)
    except (http.HttpError, ValueError) as error:
        log.warning("Slack users.info failed (%s): the user is treated as unknown", type(error).__name__)
        return ""
    profile = (data.get("user") or {}).get("profile") or {} if isinstance(data, dict) else {}
    return str(profile.get("email") or "")


def act(interaction: Interaction) -> dict[str, Any]:
    """Acknowledge as the mapped user; the message for response_url, which says what happened."""
    user = mrdj_user(interaction.slack_user)
    if user is None:
        return _ephemeral(
            f"mrdj does not know Slack user {interaction.slack_name or interaction.slack_user}: nothing was "
            "acknowledged. An admin links you under Admin → Slack users (or give both the same e-mail)."
        )
    if not user.has_perm("alerting.acknowledge_alert"):
        return _ephemeral(f"{user.get_username()} may not acknowledge alerts in mrdj: nothing changed.")
    alert = Alert.objects.filter(pk=interaction.alert_id).first()
    if alert is None:
        return _ephemeral(f"alert {interaction.alert_id} is not known to mrdj.")
    if not alert.firing:
        return _replaced(
            interaction.blocks, f"Resolved at {shown(alert.resolved_at)}: nothing to acknowledge"
        )
    if alert_actions.acknowledge(alert, user):
        note = f"Acknowledged by {user.get_username()} in Slack at {shown(alert.acknowledged_at)}"
    else:
        note = f"Already acknowledged by {alert.acknowledged_by_name} at {shown(alert.acknowledged_at)}"
    return _replaced(interaction.blocks, note)


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


def _replaced(blocks: list[dict[str, Any]], note: str) -> dict[str, Any]:
    """The same message without the Acknowledge button, with who acknowledged under it."""
    kept = []
    for block in blocks:
        if block.get("type") == "actions":
            elements = [e for e in block.get("elements") or [] if e.get("action_id") != ACK_ACTION]
            block = {**block, "elements": elements} if elements else None
        if block:
            kept.append(block)
    kept.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return {"replace_original": True, "text": note, "blocks": kept}


def respond_later(response_url: str, message: dict[str, Any]) -> threading.Thread:
    """Slack wants the interaction answered within 3 s: the message update goes after it."""

    def post() -> None:
        try:
            http.post_json(response_url, message, connect_timeout=3, read_timeout=5)
        except http.HttpError as error:
            log.warning("Slack response_url refused the update (%s)", type(error).__name__)
        finally:
            close_old_connections()

    thread = threading.Thread(target=post, name="mrdj-slack-response", daemon=True)
    thread.start()
    return thread

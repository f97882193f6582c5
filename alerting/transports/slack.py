"""Slack incoming webhooks: Block Kit blocks with a plain text fallback.

https://api.slack.com/messaging/webhooks; limits from https://api.slack.com/reference/block-kit/blocks
(header 150 characters, section text 3000, each field 2000, at most 10 fields).
"""

from __future__ import annotations

from typing import Any

from alerting.content import NotificationContent
from alerting.transports.base import Transport, clip
from mrdj.config import get_config

ACK_ACTION = "mrdj_acknowledge"  # the Acknowledge button, answered by alerting.slack_actions


def escape(text: str) -> str:
    """mrkdwn treats &, < and > as markup: https://api.slack.com/reference/surfaces/formatting#escaping"""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(escape(text), 3000)}}


class Slack(Transport):
    service = "slack"

    def body(self, content: NotificationContent, channel: str) -> dict[str, Any]:
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": clip(content.title, 150)}},
            _section(content.message),
        ]
        if content.facts:
            fields = [
                {"type": "mrkdwn", "text": clip(f"*{name}*\n{escape(value)}", 2000)}
                for name, value in content.facts[:10]
            ]
            blocks.append({"type": "section", "fields": fields})
        blocks += [_section(f"{label}: {text}") for label, text in content.notes]
        buttons: list[dict[str, Any]] = []
        if content.type == "alert" and content.alert_id and get_config().value("SLACK_SIGNING_SECRET"):
            buttons.append(
                {
                    "type": "button",
                    "action_id": ACK_ACTION,
                    "text": {"type": "plain_text", "text": "Acknowledge"},
                    "style": "primary",
                    "value": str(content.alert_id),
                }
            )
        buttons.append(
            {
                "type": "button",
                "action_id": "mrdj_open_dashboard",
                "text": {"type": "plain_text", "text": "Open in dashboard"},
                "url": content.dashboard_url,
            }
        )
        blocks.append({"type": "actions", "elements": buttons})
        # The text is the notification and screen-reader fallback when blocks are present.
        body: dict[str, Any] = {"text": clip(content.title, 3000), "blocks": blocks}
        if channel:
            body["channel"] = channel
        return body

    def accepted(self, response) -> bool:
        # Slack answers 200 "ok"; failures come as 400/403/404/410 with a reason word.
        return response.status == 200

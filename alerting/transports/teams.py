"""MS Teams: an Adaptive Card wrapped in a message, for Workflows and the legacy connectors.

https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#send-adaptive-cards-using-an-incoming-webhook
A bare card is refused; Workflows answer 202 even when the flow later fails, so the
delivery records what the service said, no more.
"""

from __future__ import annotations

from typing import Any

from alerting.transports.base import Transport

COLOURS = {"critical": "Attention", "warning": "Warning", "resolved": "Good"}


class Teams(Transport):
    service = "teams"

    def body(self, content: dict[str, Any], channel: str) -> dict[str, Any]:
        card_body: list[dict[str, Any]] = [
            {
                "type": "TextBlock",
                "text": content["title"],
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": COLOURS.get(content.get("severity", ""), "Default"),
            },
            {"type": "TextBlock", "text": content["message"], "wrap": True},
        ]
        if content.get("facts"):
            facts = [{"title": name, "value": value} for name, value in content["facts"]]
            card_body.append({"type": "FactSet", "facts": facts})
        for label in ("runbook", "escalation"):
            if content.get(label):
                card_body.append(
                    {"type": "TextBlock", "text": f"{label.capitalize()}: {content[label]}", "wrap": True}
                )
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": card_body,
            "actions": [
                {"type": "Action.OpenUrl", "title": "Open dashboard", "url": content["dashboard_url"]}
            ],
        }
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": card,
                }
            ],
        }

    def accepted(self, response) -> bool:
        # Legacy connectors answer 200 with an error text in the body when delivery to Teams failed.
        failed = response.body.lstrip().lower().startswith(b"webhook message delivery failed")
        return 200 <= response.status < 300 and not failed

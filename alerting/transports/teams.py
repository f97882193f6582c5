"""MS Teams: an Adaptive Card wrapped in a message, for Workflows and the legacy connectors.

https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#send-adaptive-cards-using-an-incoming-webhook
A bare card is refused; Workflows answer 202 even when the flow later fails, so the
delivery records what the service said, no more. Teams refuses a message of roughly 28 KB
(https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/format-your-bot-messages:
"the message size limit is 28 KB"): each text is clipped so that the whole card stays under
about 20 KB, as Slack's and Discord's bodies are clipped to their limits.
"""

from __future__ import annotations

from typing import Any

from alerting.content import NotificationContent
from alerting.transports.base import Transport, clip

COLOURS = {"critical": "Attention", "warning": "Warning", "resolved": "Good"}
TITLE, TEXT, FACT_TITLE, FACT_VALUE, MAX_FACTS = 300, 4000, 100, 1000, 10


class Teams(Transport):
    service = "teams"

    def body(self, content: NotificationContent, channel: str) -> dict[str, Any]:
        card_body: list[dict[str, Any]] = [
            {
                "type": "TextBlock",
                "text": clip(content.title, TITLE),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": COLOURS.get(content.severity, "Default"),
            },
            {"type": "TextBlock", "text": clip(content.message, TEXT), "wrap": True},
        ]
        if content.facts:
            facts = [
                {"title": clip(name, FACT_TITLE), "value": clip(value, FACT_VALUE)}
                for name, value in content.facts[:MAX_FACTS]
            ]
            card_body.append({"type": "FactSet", "facts": facts})
        card_body += [
            {"type": "TextBlock", "text": clip(f"{label}: {text}", TEXT), "wrap": True}
            for label, text in content.notes
        ]
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": card_body,
            "actions": [{"type": "Action.OpenUrl", "title": "Open dashboard", "url": content.dashboard_url}],
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

"""Discord webhooks: a short content line and one embed, within Discord's limits.

https://discord.com/developers/docs/resources/webhook#execute-webhook and
https://discord.com/developers/docs/resources/message#embed-object-embed-limits
(content 2000, title 256, description 4096, field value 1024, all embeds 6000 together).
"""

from __future__ import annotations

from typing import Any

from alerting.content import NotificationContent
from alerting.transports.base import Transport, clip

COLOURS = {"critical": 0xE01E5A, "warning": 0xECB22E, "resolved": 0x2EB67D}


class Discord(Transport):
    service = "discord"

    def body(self, content: NotificationContent, channel: str) -> dict[str, Any]:
        description = content.message
        for label, text in content.notes:
            description += f"\n\n**{label}**: {text}"
        # Sizes below keep the embed under 6000 characters in total whatever the content.
        embed = {
            "title": clip(content.title, 256),
            "description": clip(description, 2000),
            "url": content.dashboard_url,
            "color": COLOURS.get(content.severity, 0x4A90D9),
            "fields": [
                {"name": clip(name, 64), "value": clip(value, 512), "inline": name in ("Queue", "Severity")}
                for name, value in content.facts[:5]
            ],
        }
        return {
            "content": clip(content.title, 2000),
            "embeds": [embed],
            "allowed_mentions": {"parse": []},  # a queue name can never ping @everyone
        }

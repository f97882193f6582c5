"""The integration queues and their upstreams. A third queue is one more entry here."""

from __future__ import annotations

from dataclasses import dataclass

from mrdj.config import Config, get_config


@dataclass(frozen=True)
class Queue:
    name: str
    label: str
    flag: str
    url_variable: str
    token_variable: str

    def upstream_url(self, config: Config | None = None) -> str:
        return (config or get_config()).get_str(self.url_variable)

    def upstream_token(self, config: Config | None = None) -> str:
        return (config or get_config()).get_str(self.token_variable)


QUEUES: dict[str, Queue] = {
    queue.name: queue
    for queue in (
        Queue("rentguy", "RentGuy CRM", "FLAG_RENTGUY_INTEGRATION", "RENTGUY_API_URL", "RENTGUY_API_TOKEN"),
        Queue(
            "sevensa",
            "Sevensa submit API",
            "FLAG_SEVENSA_INTEGRATION",
            "SEVENSA_SUBMIT_URL",
            "SEVENSA_API_TOKEN",
        ),
    )
}
QUEUE_CHOICES = [(queue.name, queue.label) for queue in QUEUES.values()]

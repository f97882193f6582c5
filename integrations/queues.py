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
        return (config or get_config()).value(self.url_variable)

    def upstream_token(self, config: Config | None = None) -> str:
        return (config or get_config()).value(self.token_variable)

    @property
    def max_in_flight_variable(self) -> str:
        return f"QUEUE_{self.name.upper()}_MAX_IN_FLIGHT"

    @property
    def rate_variable(self) -> str:
        return f"QUEUE_{self.name.upper()}_RATE_PER_S"

    def limits(self, config: Config | None = None) -> Limits:
        """What the upstream may receive, from every worker on every machine together."""
        config = config or get_config()
        return Limits(
            max_in_flight=config.value(self.max_in_flight_variable),
            rate_per_s=config.value(self.rate_variable),
        )


@dataclass(frozen=True)
class Limits:
    max_in_flight: int  # tries at the upstream at once
    rate_per_s: float  # tries started per second; 0: no limit


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

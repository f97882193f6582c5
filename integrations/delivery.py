"""One try of a job: POST it upstream and classify the answer."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from datetime import UTC

from integrations.models import ANSWER_CHARS
from integrations.queues import Queue
from mrdj import http
from mrdj.config import Config

RETRY_AFTER_CAP_SECONDS = 3600


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    retryable: bool
    status_code: int | None
    error: str
    duration_ms: int
    retry_after_ms: int | None = None
    # The answer says the upstream itself is down (no connection, a timeout, a 5xx): what
    # the circuit breaker counts. A 429 or 503 with Retry-After pauses the queue instead.
    upstream_down: bool = False
    answer: str = ""  # the first characters of the answer body, for the job's page

    @property
    def pauses(self) -> bool:
        return self.retry_after_ms is not None


@dataclass(frozen=True)
class QueueSettings:
    """The queue tuning, read once per try from the live configuration."""

    retry_base_ms: int
    retry_max_ms: int
    max_attempts: int
    connect_timeout_ms: int
    read_timeout_ms: int
    breaker_failures: int
    probe_ms: int
    probe_max_ms: int
    lease_ms: int

    @classmethod
    def read(cls, config: Config) -> QueueSettings:
        probe_ms = config.value("QUEUE_BREAKER_PROBE_MS")
        return cls(
            retry_base_ms=config.value("QUEUE_RETRY_BASE_MS"),
            retry_max_ms=config.value("QUEUE_RETRY_MAX_MS"),
            max_attempts=config.value("QUEUE_MAX_ATTEMPTS"),
            connect_timeout_ms=config.value("QUEUE_HTTP_CONNECT_TIMEOUT_MS"),
            read_timeout_ms=config.value("QUEUE_HTTP_READ_TIMEOUT_MS"),
            breaker_failures=config.value("QUEUE_BREAKER_FAILURES"),
            probe_ms=probe_ms,
            probe_max_ms=max(probe_ms, config.value("QUEUE_BREAKER_PROBE_MAX_MS")),
            lease_ms=config.value("QUEUE_LEASE_MS"),
        )


def parse_retry_after(value: str | None, now: float | None = None) -> int | None:
    """Retry-After in ms, from delay-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return int(min(max(seconds, 0), RETRY_AFTER_CAP_SECONDS) * 1000)


def retry_delay_ms(attempt: int, settings: QueueSettings, retry_after_ms: int | None = None) -> int:
    """Exponential backoff with jitter (half fixed, half random), never before Retry-After."""
    delay = http.backoff_ms(attempt, settings.retry_base_ms, settings.retry_max_ms, jitter=True)
    return max(delay, retry_after_ms or 0)


def deliver(
    queue: Queue, payload: dict, idempotency_key: str, config: Config, settings: QueueSettings
) -> Outcome:
    url = queue.upstream_url(config)
    if not url:
        return Outcome(False, True, None, f"{queue.url_variable} is not set", 0)
    return post(url, queue.upstream_token(config), payload, idempotency_key, settings)


def post(url: str, token: str, payload: dict, idempotency_key: str, settings: QueueSettings) -> Outcome:
    """POST one job and classify the answer; never raises for anything the upstream does."""
    headers = {"Idempotency-Key": idempotency_key}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.monotonic()
    try:
        response = http.post_json(
            url,
            payload,
            headers=headers,
            connect_timeout=settings.connect_timeout_ms / 1000,
            read_timeout=settings.read_timeout_ms / 1000,
        )
    except http.HttpTimeout:
        return Outcome(False, True, None, "timed out", _since(started), upstream_down=True)
    except http.HttpError as error:
        return Outcome(False, True, None, f"network error ({error})", _since(started), upstream_down=True)
    duration = _since(started)
    code = response.status
    answer = response.body[: ANSWER_CHARS * 4].decode("utf-8", "replace")[:ANSWER_CHARS]
    if 200 <= code < 300:
        return Outcome(True, False, code, "", duration, answer=answer)
    retryable = http.retryable(code)
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if code in (429, 503) else None
    return Outcome(
        False,
        retryable,
        code,
        f"HTTP {code} {response.reason or ''}".strip(),
        duration,
        retry_after,
        upstream_down=code >= 500 and retry_after is None,
        answer=answer,
    )


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)

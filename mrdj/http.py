"""The one way mrdj speaks HTTP to other systems: explicit timeouts, pooled connections.

Upstream deliveries, webhook transports and Jira all go through post_json(), so
timeouts, the User-Agent, redirects and connection reuse are decided in one place.
It uses urllib3, the engine under requests, directly: the same call on a pooled
requests.Session cost 1.88 times the CPU per request (bench/http_client.py; README, "Why
urllib3, not requests").
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3

USER_AGENT = "mrdj/0.1 (+Mister DJ operations backend)"
# Thread-safe; keeps connections alive per host. No proxy or credentials from the
# environment or ~/.netrc: what is sent is exactly what mrdj's configuration says.
# maxsize: connections kept per host, at least the tries one process keeps in flight per
# queue (QUEUE_WORKER_THREADS, 64 by default); more are opened when needed, not kept.
_pool = urllib3.PoolManager(num_pools=32, maxsize=128, retries=False)
# Answers worth trying again besides every 5xx: a timeout, too early, too many requests. Any
# other 4xx will not get better by itself (upstream deliveries, alert webhooks, incident calls).
RETRYABLE_STATUS = frozenset({408, 425, 429})


def retryable(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def backoff_ms(attempt: int, base_ms: int, max_ms: int, jitter: bool = False) -> int:
    """Doubling from base_ms with each attempt (the first waits base_ms), at most max_ms. With
    jitter, half of it fixed and half random, so that many jobs failing at once spread out."""
    ceiling = min(max_ms, base_ms * 2 ** max(attempt - 1, 0))
    if not jitter:
        return ceiling
    return ceiling // 2 + random.randint(0, ceiling - ceiling // 2)  # noqa: S311 (jitter)


class HttpError(Exception):
    """The request did not get an answer: connection refused, reset, bad URL..."""


class HttpTimeout(HttpError):
    """No connection or no answer within the timeout."""


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive
    body: bytes


def post_json(
    url: str,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    connect_timeout: float = 3.0,
    read_timeout: float = 10.0,
) -> Response:
    """POST body as JSON and return the answer, whatever its status; raises HttpError."""
    return request(
        "POST", url, body, headers=headers, connect_timeout=connect_timeout, read_timeout=read_timeout
    )


def request(
    method: str,
    url: str,
    body: Any = None,
    *,
    text: str | None = None,
    headers: dict[str, str] | None = None,
    connect_timeout: float = 3.0,
    read_timeout: float = 10.0,
) -> Response:
    """Send a request (body, when given, as JSON; text, as plain UTF-8 text) and return the
    answer; raises HttpError."""
    sent_headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    data = None
    if body is not None:
        sent_headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    elif text is not None:
        sent_headers["Content-Type"] = "text/plain; charset=utf-8"
        data = text.encode()
    try:
        answer = _pool.request(
            method,
            url,
            body=data,
            headers={**sent_headers, **(headers or {})},
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            redirect=False,
        )
    except urllib3.exceptions.NewConnectionError:  # before TimeoutError: urllib3 derives it from that
        raise HttpError("could not connect") from None
    except urllib3.exceptions.TimeoutError:
        raise HttpTimeout("timed out") from None
    except urllib3.exceptions.ProtocolError:
        raise HttpError("connection broken") from None
    except (urllib3.exceptions.HTTPError, ValueError) as error:
        # The class name only: messages may repeat the URL, which can carry credentials.
        raise HttpError(type(error).__name__) from None
    return Response(answer.status, answer.reason or "", answer.headers, answer.data)

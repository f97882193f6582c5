from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from alerting.content import NotificationContent
from alerting.models import Notification
from mrdj import http


class TransportError(Exception):
    """The service did not take the message; permanent when trying again cannot help."""

    def __init__(self, message: str, permanent: bool = False, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Sent:
    status: int
    body: str
    duration_ms: int


def excerpt(body: bytes, size: int = 200) -> str:
    return body[:size].decode("utf-8", "replace").strip()


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Transport:
    """POST the service's JSON body to its URL and judge the answer."""

    service = "json"

    def __init__(self, connect_timeout: float, read_timeout: float, secret: str = ""):
        """secret: a credential sent in the body (PagerDuty's routing key), kept out of errors."""
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.secret = secret

    @classmethod
    def receives(cls, event: str, silenced: bool = False) -> bool:
        """Whether a notification of event goes to this service. Chat webhooks get every one but
        acknowledgements (for services that track an alert's state), and none under a silence."""
        return not silenced and event != Notification.Event.ACKNOWLEDGED

    def body(self, content: NotificationContent, channel: str) -> dict[str, Any]:
        raise NotImplementedError

    def accepted(self, response: http.Response) -> bool:
        return 200 <= response.status < 300

    def send(self, url: str, content: NotificationContent, channel: str = "") -> Sent:
        started = time.monotonic()
        try:
            response = http.post_json(
                url,
                self.body(content, channel),
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
            )
        except http.HttpError as error:
            raise TransportError(str(error)) from None
        text = excerpt(response.body)
        if self.secret:
            text = text.replace(self.secret, "<secret>")
        if not self.accepted(response):
            status = response.status
            permanent = not http.retryable(status) and status >= 400
            raise TransportError(
                f"{self.service} answered {status} {response.reason}: {text}".strip(": "),
                permanent=permanent,
                status=status,
                body=text,
            )
        return Sent(response.status, text, int((time.monotonic() - started) * 1000))

"""The Configuration tab's Test buttons: does what a variable points at answer?

Each probe returns (passed, a sentence for the operator). No URL is repeated in the
sentence: webhook and collector URLs can carry credentials.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from alerting import alert_actions
from alerting.models import Delivery
from mrdj import audit, http
from mrdj.config import ConfigError, get_config

TIMEOUTS = {"connect_timeout": 3.0, "read_timeout": 5.0}


def _answers(url: str, headers: dict[str, str] | None = None) -> tuple[bool, str, http.Response | None]:
    if not url:
        return False, "not set", None
    started = time.monotonic()
    try:
        answer = http.request("GET", url, headers=headers, **TIMEOUTS)
    except http.HttpError as error:
        return False, f"no answer: {error}", None
    took = (time.monotonic() - started) * 1000
    return True, f"answered HTTP {answer.status} {answer.reason} in {took:.0f} ms", answer


def reachable(name: str) -> Callable[[Any], tuple[bool, str]]:
    """An upstream or collector URL: any HTTP answer means it is there (a collector answers
    405 to a GET, an upstream 401 without its token); no answer is the failure."""

    def probe(actor: Any) -> tuple[bool, str]:
        passed, sentence, _ = _answers(get_config().value(name))
        return passed, f"{name} {sentence}"

    return probe


def jira_credentials(actor: Any) -> tuple[bool, str]:
    """Jira's own 'who am I' with mrdj's credentials: 200 means Jira takes them."""
    config = get_config()
    endpoint, user, token = (
        config.value(n) for n in ("ALERT_JIRA_ENDPOINT", "ALERT_JIRA_USER", "ALERT_JIRA_TOKEN")
    )
    if not (endpoint and user and token):
        return (
            False,
            "Jira is not configured: ALERT_JIRA_ENDPOINT, ALERT_JIRA_USER and ALERT_JIRA_TOKEN are needed",
        )
    basic = base64.b64encode(f"{user}:{token}".encode()).decode()
    answered, sentence, answer = _answers(
        endpoint.rstrip("/") + "/rest/api/2/myself", {"Authorization": f"Basic {basic}"}
    )
    if not answered:
        return False, f"Jira {sentence}"
    if answer.status == 200:
        return True, f"Jira accepts the credentials ({sentence})"
    return False, f"Jira refuses the credentials ({sentence})"


def webhooks(actor: Any) -> tuple[bool, str]:
    """The playbook's smoke test, to every target of ALERT_WEBHOOK_URLS."""
    try:
        deliveries = alert_actions.send_test_alert(actor)
    except ConfigError as error:
        return False, str(error)
    if not deliveries:
        return False, "ALERT_WEBHOOK_URLS is empty: the smoke message reached no one"
    sent = [d for d in deliveries if d.status == Delivery.Status.SENT]
    failed = ", ".join(f"{d.target}: {d.error or d.status}" for d in deliveries if d not in sent)
    return len(sent) == len(
        deliveries
    ), f"smoke message taken by {len(sent)} of {len(deliveries)} webhooks" + (
        f" (failed: {failed})" if failed else ""
    )


PROBES: dict[str, Callable[[Any], tuple[bool, str]]] = {
    "ALERT_WEBHOOK_URLS": webhooks,
    "ALERT_JIRA_ENDPOINT": jira_credentials,
    "ALERT_JIRA_USER": jira_credentials,
    "ALERT_JIRA_TOKEN": jira_credentials,
    **{
        name: reachable(name)
        for name in (
            "RENTGUY_API_URL",
            "SEVENSA_SUBMIT_URL",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        )
    },
}


def run(name: str, actor: Any) -> tuple[bool, str]:
    passed, sentence = PROBES[name](actor)
    audit.record("config.test", actor=actor, target=name, after={"passed": passed, "result": sentence[:300]})
    return passed, sentence

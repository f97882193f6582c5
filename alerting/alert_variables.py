"""The configuration variables of alerting (see mrdj/declarations.py)."""

from __future__ import annotations

from mrdj.declarations import Kind, Variable, declare
from mrdj.variables import JIRA, TELEMETRY, THRESHOLDS, WEBHOOKS

MS, INT, URL, LIST, TEXT = Kind.MS, Kind.INT, Kind.URL, Kind.LIST, Kind.TEXT


def _ms(name: str, default: str, description: str, group=WEBHOOKS, minimum: int = 0) -> Variable:
    return Variable(name, MS, default, description, group, minimum=minimum)


declare(
    Variable(
        "ALERT_WEBHOOK_URLS",
        LIST,
        "",
        "Webhook URLs, comma-separated: Slack, Discord, MS Teams or generic JSON, recognised from the "
        "URL or named with a prefix (slack+https://..., teams+..., discord+..., json+...); PagerDuty as "
        "pagerduty+<integration key>. Secrets: mrdj shows and stores only their service and host.",
        WEBHOOKS,
        secret=True,
    ),
    Variable(
        "ALERT_SEVERITY_ROUTE",
        LIST,
        "",
        "Extra targets per severity, comma-separated: a Slack channel or a webhook URL.",
        WEBHOOKS,
        example="critical:#dr-war-room",
    ),
    Variable(
        "ALERT_DEFAULT_CHANNEL",
        TEXT,
        "#alerts-queues",
        "Slack channel of every alert (Slack's channel field; app webhooks post to their own channel).",
        WEBHOOKS,
    ),
    _ms(
        "ALERT_THROTTLE_MS",
        "120000",
        "The same queue, kind and severity is not sent again within this window; dead-letter alerts: "
        "at most one per window per queue, with the count since the last.",
    ),
    _ms(
        "ALERT_RESOLVE_QUIET_MS",
        "600000",
        "A firing alert resolves once its condition stayed clear this long.",
    ),
    _ms(
        "ALERT_EVALUATE_MIN_INTERVAL_MS",
        "250",
        "Queue events evaluate at once, at most once per this interval (the one evaluator of the "
        "deployment; every other process announces at most once per this interval).",
    ),
    _ms(
        "ALERT_ACK_WARNING_MS", "300000", "Acknowledge deadline of a warning; past it the next role is named."
    ),
    _ms("ALERT_ACK_CRITICAL_MS", "120000", "Acknowledge deadline of a critical alert."),
    Variable(
        "ALERT_ESCALATION_WARNING",
        TEXT,
        "#oncall-ops",
        "Escalation of a warning nobody acknowledged.",
        WEBHOOKS,
    ),
    Variable(
        "ALERT_ESCALATION_CRITICAL",
        TEXT,
        "@ic-oncall",
        "Escalation of a critical alert nobody acknowledged.",
        WEBHOOKS,
    ),
    Variable(
        "ALERT_ONCALL_PRIMARY",
        TEXT,
        "",
        "Named in Jira tickets as first responder until someone acknowledges.",
        WEBHOOKS,
    ),
    _ms(
        "ALERT_DR_AFTER_MS",
        "600000",
        "DR trigger: a critical alert firing this long; also two queues critical at once, or "
        "telemetry silent while an alert fires.",
    ),
    # The dead-man's switch (alerting/deadman.py); its interval is read by the settings (mrdj/variables.py).
    Variable(
        "HEARTBEAT_URL",
        URL,
        "",
        "Dead-man's switch: a healthchecks.io-style ping URL; mrdj pings it every HEARTBEAT_INTERVAL_MS "
        "while the reconciler and the alert evaluation run, <url>/fail with the reason when they do not. "
        "Empty: no pings.",
        WEBHOOKS,
        secret=True,
    ),
    _ms(
        "HEARTBEAT_STALE_MS",
        "120000",
        "The reconciler or the alert evaluation not run for this long makes the dead-man's switch send "
        "its failure ping.",
        minimum=1000,
    ),
    _ms("ALERT_HTTP_CONNECT_TIMEOUT_MS", "3000", "Connect timeout of one webhook delivery.", minimum=1),
    _ms("ALERT_HTTP_READ_TIMEOUT_MS", "5000", "Read timeout of one webhook delivery.", minimum=1),
    _ms(
        "ALERT_DELIVERY_RETRY_BASE_MS",
        "5000",
        "First wait before a failed delivery is sent again.",
        minimum=1,
    ),
    _ms("ALERT_DELIVERY_RETRY_MAX_MS", "300000", "Longest wait between deliveries (it doubles).", minimum=1),
    Variable("ALERT_DELIVERY_MAX_ATTEMPTS", INT, "8", "Tries of one delivery.", WEBHOOKS, minimum=1),
    Variable("ALERT_SENDER_THREADS", INT, "8", "Deliveries one process sends at once.", WEBHOOKS, minimum=1),
    # PagerDuty: outbound through the pagerduty+<key> entries above, inbound through its v3 webhooks.
    Variable(
        "ALERT_PAGERDUTY_EVENTS_URL",
        URL,
        "https://events.pagerduty.com/v2/enqueue",
        "PagerDuty's Events API v2 endpoint, for the pagerduty+<integration key> targets "
        "(EU accounts may use https://events.eu.pagerduty.com/v2/enqueue).",
        WEBHOOKS,
    ),
    Variable(
        "PAGERDUTY_WEBHOOK_SECRET",
        LIST,
        "",
        "Signing secret of the PagerDuty v3 webhook subscription that posts to "
        "/integrations/pagerduty/webhook; during a rotation the old and the new, comma-separated. "
        "Empty: every PagerDuty webhook is refused.",
        WEBHOOKS,
        secret=True,
    ),
    # Thresholds: the default row's values wherever the admin's row leaves a field empty.
    Variable(
        "ALERT_QUEUE_WARNING_BACKLOG",
        INT,
        "100",
        "Jobs waiting (retries included, in flight not) at which a queue is in warning; 0: off. "
        "The default row in the admin (Alerting > Thresholds) overrides it.",
        THRESHOLDS,
        minimum=0,
    ),
    Variable(
        "ALERT_QUEUE_CRITICAL_BACKLOG",
        INT,
        "500",
        "Jobs waiting at which a queue is critical; 0: off.",
        THRESHOLDS,
        minimum=0,
    ),
    _ms(
        "ALERT_QUEUE_WARNING_RETRY_AGE_MS",
        "300000",
        "Age of the oldest job waiting to retry at which a queue is in warning.",
        THRESHOLDS,
    ),
    _ms(
        "ALERT_QUEUE_CRITICAL_RETRY_AGE_MS",
        "900000",
        "Age of the oldest job waiting to retry at which a queue is critical.",
        THRESHOLDS,
    ),
    Variable(
        "ALERT_QUEUE_DEAD_LETTER_WARNING",
        INT,
        "1",
        "Dead-letter jobs at which a queue is in warning.",
        THRESHOLDS,
        minimum=0,
    ),
    # Jira
    Variable(
        "ALERT_JIRA_ENDPOINT",
        URL,
        "",
        "Jira site base URL (REST API v2); empty: no tickets. Critical alerts open an issue at once, "
        "warnings when still firing after ALERT_JIRA_WARNING_DELAY_MS.",
        JIRA,
        example="https://misterdj.atlassian.net",
    ),
    Variable("ALERT_JIRA_PROJECT", TEXT, "OPS", "Project key of the tickets.", JIRA),
    Variable("ALERT_JIRA_ISSUE_TYPE", TEXT, "Task", "Issue type of the tickets.", JIRA),
    Variable("ALERT_JIRA_USER", TEXT, "", "Basic auth: the Atlassian account's e-mail.", JIRA),
    Variable("ALERT_JIRA_TOKEN", TEXT, "", "Basic auth: the account's API token.", JIRA, secret=True),
    Variable(
        "SLACK_SIGNING_SECRET",
        TEXT,
        "",
        "The Slack app's signing secret: Slack alert messages then carry an Acknowledge button, answered "
        "at /integrations/slack/actions (the app's interactivity request URL).",
        WEBHOOKS,
        secret=True,
    ),
    Variable(
        "SLACK_BOT_TOKEN",
        TEXT,
        "",
        "Optional bot token (scope users:read.email): a Slack user not linked under Admin → Slack users "
        "is matched to the mrdj user with the same e-mail.",
        WEBHOOKS,
        secret=True,
    ),
    Variable("SLACK_API_URL", URL, "https://slack.com/api", "Slack's Web API, for users.info.", WEBHOOKS),
    _ms("ALERT_JIRA_WARNING_DELAY_MS", "900000", "A warning gets a ticket once it fired this long.", JIRA),
    Variable(
        "ALERT_JIRA_RESOLVE_TRANSITION",
        TEXT,
        "",
        "Transition applied on resolution (by name, such as Done); empty: a comment only.",
        JIRA,
    ),
    _ms("ALERT_JIRA_RETRY_MS", "30000", "Jira that failed is asked again after this long.", JIRA, minimum=1),
    _ms("ALERT_JIRA_READ_TIMEOUT_MS", "10000", "Read timeout of one Jira request.", JIRA, minimum=1),
    _ms(
        "ALERT_RESOLUTION_TARGET_CRITICAL_MS",
        "3600000",
        "Expected resolution named in tickets: this long after a critical alert started.",
        JIRA,
    ),
    _ms(
        "ALERT_RESOLUTION_TARGET_WARNING_MS",
        "14400000",
        "Expected resolution named in tickets: this long after a warning started.",
        JIRA,
    ),
    # Grafana annotations (alerting/grafana_annotations.py)
    Variable(
        "GRAFANA_URL",
        URL,
        "",
        "Grafana's base URL: alerts firing, escalating and resolving, DR activations, flushes, replays "
        "and flag or configuration changes become annotations tagged mrdj; empty: none are sent.",
        TELEMETRY,
        example="https://grafana.example.com",
    ),
    Variable(
        "GRAFANA_API_TOKEN",
        TEXT,
        "",
        "Bearer token of a Grafana service account allowed to write annotations (role Editor).",
        TELEMETRY,
        secret=True,
    ),
)

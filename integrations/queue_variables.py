"""The configuration variables of the integration queues (see mrdj/declarations.py)."""

from __future__ import annotations

from integrations.queues import QUEUES
from mrdj.declarations import Kind, Variable, declare
from mrdj.variables import EVERY_PROCESS, TOKENS
from mrdj.variables import QUEUES as QUEUE_GROUP

MS, INT, NUMBER, URL, TEXT = Kind.MS, Kind.INT, Kind.NUMBER, Kind.URL, Kind.TEXT
UPSTREAM_EXAMPLES = {
    "RENTGUY_API_URL": "https://api.rentguy.example/v1/leads",
    "SEVENSA_SUBMIT_URL": "https://submit.sevensa.example/v1/submissions",
}

for queue in QUEUES.values():
    declare(
        Variable(
            queue.url_variable,
            URL,
            "",
            f"Upstream of the {queue.name} queue ({queue.label}); jobs wait until it is set.",
            QUEUE_GROUP,
            example=UPSTREAM_EXAMPLES.get(queue.url_variable, ""),
        ),
        Variable(
            queue.token_variable,
            TEXT,
            "",
            f"Sent to the {queue.label} as a Bearer token.",
            TOKENS,
            secret=True,
        ),
        Variable(
            queue.max_in_flight_variable,
            INT,
            "64",
            f"Tries at the {queue.label} at once, from every worker on every machine together.",
            QUEUE_GROUP,
            minimum=1,
        ),
        Variable(
            queue.rate_variable,
            NUMBER,
            "0",
            f"Tries started per second at the {queue.label} (0: no limit; decimals such as 0.5 allowed).",
            QUEUE_GROUP,
        ),
    )

declare(
    Variable(
        "INTEGRATIONS_API_TOKEN",
        TEXT,
        "",
        "Bearer token of intake (POST /integrations/<queue>/jobs); unset: no token is accepted.",
        TOKENS,
        secret=True,
    ),
    Variable(
        "METRICS_API_TOKEN",
        TEXT,
        "",
        "Bearer token of GET /metrics/queues and GET /metrics (Grafana, health checks).",
        TOKENS,
        secret=True,
    ),
    Variable(
        "OPS_API_TOKEN",
        TEXT,
        "",
        "Bearer token of operator actions (flush, replay, export, acknowledge) and of the metrics.",
        TOKENS,
        secret=True,
    ),
    Variable("QUEUE_RETRY_BASE_MS", MS, "2000", "First backoff after a failed try.", QUEUE_GROUP, minimum=1),
    Variable("QUEUE_RETRY_MAX_MS", MS, "300000", "Longest backoff between tries.", QUEUE_GROUP, minimum=1),
    Variable(
        "QUEUE_MAX_ATTEMPTS", INT, "10", "Tries before a job goes to dead-letter.", QUEUE_GROUP, minimum=1
    ),
    Variable(
        "QUEUE_HTTP_CONNECT_TIMEOUT_MS", MS, "3000", "Connect timeout of one try.", QUEUE_GROUP, minimum=1
    ),
    Variable("QUEUE_HTTP_READ_TIMEOUT_MS", MS, "10000", "Read timeout of one try.", QUEUE_GROUP, minimum=1),
    Variable(
        "QUEUE_LEASE_MS",
        MS,
        "60000",
        "A claim older than this belongs to a dead worker and is released.",
        QUEUE_GROUP,
        minimum=1000,
    ),
    Variable(
        "QUEUE_BREAKER_FAILURES",
        INT,
        "5",
        "Tries in a row that find the upstream down (refused, reset, timeout, 5xx) before its circuit "
        "opens: jobs wait, no try counts against them, one probe goes out per interval.",
        QUEUE_GROUP,
        minimum=1,
    ),
    Variable(
        "QUEUE_BREAKER_PROBE_MS",
        MS,
        "5000",
        "First interval between probes of an open circuit.",
        QUEUE_GROUP,
        minimum=100,
    ),
    Variable(
        "QUEUE_BREAKER_PROBE_MAX_MS",
        MS,
        "300000",
        "Longest interval between probes (the interval doubles up to it; at least QUEUE_BREAKER_PROBE_MS).",
        QUEUE_GROUP,
        minimum=100,
    ),
    Variable(
        "QUEUE_STALL_ALERT_MS",
        MS,
        "60000",
        "A queue with a job due this long and no try started meanwhile is stalled: a critical alert "
        "naming the likeliest cause, /healthz degraded and readiness red.",
        QUEUE_GROUP,
        minimum=1000,
    ),
    Variable(
        "QUEUE_WORKER_THREADS",
        INT,
        "64",
        "Tries one process keeps in flight per queue (its delivery threads); each process holds one "
        "database connection for the queue work whatever this is.",
        QUEUE_GROUP,
        minimum=1,
        restart=EVERY_PROCESS,
    ),
)

"""Every variable mrdj reads, declared once: type, default, meaning, the playbook section it
serves, and whether it applies at once or at the next start of a process.

These are mrdj's own (and those the settings read before the apps load); each app
declares the rest in its *_variables.py. Code reads typed values with
get_config().value(NAME); managed.env.example and the configuration reports are made
from the registry.
"""

from __future__ import annotations

from mrdj.declarations import Group, Kind, Variable, declare

BOOL, INT, MS, NUMBER, URL, LIST, CHOICE, TEXT = (
    Kind.BOOL,
    Kind.INT,
    Kind.MS,
    Kind.NUMBER,
    Kind.URL,
    Kind.LIST,
    Kind.CHOICE,
    Kind.TEXT,
)
EVERY_PROCESS = "every process"

FLAGS = Group("Feature flags", "0")
TELEMETRY = Group("Telemetry", "1")
WEBHOOKS = Group("Alert webhooks and routing", "2, 4 and 5")
THRESHOLDS = Group("Thresholds' defaults", "2 and 3")
JIRA = Group("Jira", "5")
QUEUES = Group("Queues and upstreams", "3 and 6")
TOKENS = Group("Tokens", "3")
INCIDENTS = Group("Incidents", "4, 5 and 7")
PERSONALIZATION = Group("Personalization", "0")
WEB = Group("Web application", "8")

declare(
    # --- Feature flags
    Variable("FLAG_PERSONALIZATION", BOOL, "off", "Personalization APIs and webhook endpoints.", FLAGS),
    Variable(
        "FLAG_RENTGUY_INTEGRATION",
        BOOL,
        "on",
        "Queue processing towards the RentGuy CRM (jobs are held while off, not dropped).",
        FLAGS,
    ),
    Variable("FLAG_SEVENSA_INTEGRATION", BOOL, "on", "The Sevensa submit queue and export endpoints.", FLAGS),
    Variable(
        "FLAG_TELEMETRY",
        BOOL,
        "off",
        "OpenTelemetry tracing and metrics, once OTEL_ENABLED and the endpoints are set.",
        FLAGS,
    ),
    # --- Telemetry
    Variable(
        "OTEL_ENABLED",
        BOOL,
        "false",
        "Second switch for telemetry: both this and FLAG_TELEMETRY must be on.",
        TELEMETRY,
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        URL,
        "",
        "OTLP/HTTP endpoint of the collector for traces; telemetry stays off without an endpoint.",
        TELEMETRY,
        example="https://otel-gateway.example.com/v1/traces",
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        URL,
        "",
        "OTLP/HTTP endpoint of the collector for metrics.",
        TELEMETRY,
        example="https://otel-gateway.example.com/v1/metrics",
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        URL,
        "",
        "Or one base URL for both (+ /v1/traces and /v1/metrics).",
        TELEMETRY,
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_HEADERS",
        LIST,
        "",
        "Headers sent with every export (key=value pairs, comma-separated, URL-encoded values).",
        TELEMETRY,
        secret=True,
    ),
    Variable(
        "OTEL_SERVICE_NAME",
        TEXT,
        "mr-dj-backend",
        "service.name on traces and metrics (before service.name in OTEL_RESOURCE_ATTRIBUTES).",
        TELEMETRY,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "DEPLOYMENT_ENVIRONMENT",
        TEXT,
        "development",
        "deployment.environment on traces and metrics, unless OTEL_RESOURCE_ATTRIBUTES names one.",
        TELEMETRY,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "OTEL_BSP_SCHEDULE_DELAY_MS",
        MS,
        "1000",
        "Delay of a span batch (the standard OTEL_BSP_SCHEDULE_DELAY applies when this is unset).",
        TELEMETRY,
        minimum=10,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "OTEL_METRIC_EXPORT_INTERVAL_MS",
        MS,
        "10000",
        "Interval of metric exports (the standard OTEL_METRIC_EXPORT_INTERVAL applies when this is unset).",
        TELEMETRY,
        minimum=100,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "OTEL_EXPORT_TIMEOUT_MS",
        MS,
        "5000",
        "Timeout of one export.",
        TELEMETRY,
        minimum=100,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "OTEL_TRACES_SAMPLE_PERCENT",
        INT,
        "100",
        "Share of traces recorded, in percent (a trace started elsewhere follows its parent); the "
        "standard OTEL_TRACES_SAMPLER, when set, decides instead.",
        TELEMETRY,
        minimum=0,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "OTEL_SILENCE_ALERT_MS",
        MS,
        "300000",
        "No successful export for this long while telemetry is on fires the telemetry_silent alert.",
        TELEMETRY,
        minimum=1,
    ),
    # --- Queues: what the settings read before the apps load (the rest: integrations)
    Variable(
        "QUEUE_REDIS_ENABLED",
        BOOL,
        "false",
        "true: jobs run on Celery workers over Redis; false: the in-process fallback inside the web "
        "process. Switch to false during a Redis incident: `python manage.py queues mode in-process`.",
        QUEUES,
    ),
    Variable(
        "QUEUE_RECONCILE_INTERVAL_MS",
        MS,
        "5000",
        "How often beat runs the reconciler (beat counts whole seconds).",
        QUEUES,
        minimum=500,
        restart="beat",
    ),
    Variable(
        "ALERT_EVALUATE_INTERVAL_MS",
        MS,
        "5000",
        "Beat's tick (whole seconds): deadlines, incidents, Jira, failed deliveries; the one alert "
        "evaluator also evaluates the figures on this interval, so a dead worker pages without any intake.",
        WEBHOOKS,
        minimum=100,
        restart="beat",
    ),
    Variable(
        "HEARTBEAT_INTERVAL_MS",
        MS,
        "60000",
        "How often mrdj pings HEARTBEAT_URL (beat; the alert evaluator while the queue runs in-process): "
        "the period to set on the monitor.",
        WEBHOOKS,
        minimum=1000,
        restart="beat",
    ),
    Variable(
        "REDIS_URL",
        TEXT,
        "redis://127.0.0.1:6379/0",
        "Redis for the Celery broker (redis://, rediss:// or unix://).",
        QUEUES,
        secret=True,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "DATABASE_URL",
        TEXT,
        "",
        "Where the database lives; empty: the SQLite file db.sqlite3 next to manage.py. "
        "PostgreSQL in production.",
        WEB,
        secret=True,
        restart=EVERY_PROCESS,
        example="postgres://mrdj:password@db.internal:5432/mrdj",
    ),
    Variable(
        "DATABASE_CONN_MAX_AGE",
        INT,
        "60",
        "Seconds a PostgreSQL connection is kept open between requests.",
        WEB,
        minimum=0,
        restart=EVERY_PROCESS,
    ),
    # --- Web application
    Variable(
        "SECRET_KEY",
        TEXT,
        "",
        "Signs sessions and CSRF tokens. Generated into managed.env on first start when absent; "
        "every host of a deployment must share one.",
        WEB,
        secret=True,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "DEBUG", BOOL, "off", "Django's debug pages; never on in production.", WEB, restart=EVERY_PROCESS
    ),
    Variable(
        "ALLOWED_HOSTS",
        LIST,
        "127.0.0.1,localhost",
        "Host names this backend answers to.",
        WEB,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "MRDJ_BASE_URL",
        URL,
        "http://127.0.0.1:8000",
        "Public address of this backend, used in alert links; https turns on secure cookies.",
        WEB,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "TRUST_X_FORWARDED_PROTO",
        BOOL,
        "off",
        "Set behind a proxy that terminates TLS and sends X-Forwarded-Proto.",
        WEB,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "TIME_ZONE", TEXT, "Europe/Amsterdam", "Time zone of pages and messages.", WEB, restart=EVERY_PROCESS
    ),
    Variable(
        "LOG_LEVEL",
        CHOICE,
        "INFO",
        "Least important log level written.",
        WEB,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        restart=EVERY_PROCESS,
    ),
    Variable(
        "STATIC_ROOT",
        TEXT,
        "staticfiles",
        "Folder collectstatic fills and the web process serves (relative: next to manage.py).",
        WEB,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "SECURE_SSL_REDIRECT",
        CHOICE,
        "AUTO",
        "Redirect plain http requests to https. AUTO: on when MRDJ_BASE_URL is https and "
        "TRUST_X_FORWARDED_PROTO is on (behind a TLS proxy that does not say which scheme a request "
        "came in on, a redirect would loop).",
        WEB,
        choices=("AUTO", "ON", "OFF"),
        restart=EVERY_PROCESS,
    ),
    Variable(
        "SECURE_HSTS_SECONDS",
        INT,
        "31536000",
        "How long browsers must use https only for this host (Strict-Transport-Security, sent on "
        "https responses only); 0: not sent.",
        WEB,
        minimum=0,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        BOOL,
        "on",
        "Strict-Transport-Security covers this host's subdomains too.",
        WEB,
        restart=EVERY_PROCESS,
    ),
    Variable(
        "SECURE_HSTS_PRELOAD",
        BOOL,
        "on",
        "Strict-Transport-Security says preload (it has no effect until the domain is submitted to "
        "the browsers' preload list).",
        WEB,
        restart=EVERY_PROCESS,
    ),
)

"""Django settings for mrdj.

Every value comes from the real environment first, then managed.env (path in
MANAGED_ENV_PATH, default next to manage.py), then the default written here.
A value that cannot be used stops start-up with a message naming it.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from urllib.parse import urlsplit

import environ
from django.core.management.utils import get_random_secret_key
from kombu import Queue

from mrdj.config import BASE_DIR, Config, ConfigError, managed_env_path
from mrdj.declarations import REGISTRY
from mrdj.managed_env import ManagedEnv

MANAGED_ENV_PATH = managed_env_path()
_config = Config(ManagedEnv(MANAGED_ENV_PATH))
for _problem in _config.store.snapshot().problems:
    # The line itself is not logged: it may hold a secret.
    logging.getLogger("mrdj.config").warning(
        "%s line %d: %s", MANAGED_ENV_PATH, _problem.line, _problem.reason
    )
for _invalid in _config.problems(list(REGISTRY.values())):  # mrdj's own; the apps' in `check`
    logging.getLogger("mrdj.config").error("%s; the default stands until it is fixed", _invalid)


def _without_password(url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        return "<unparseable URL>"
    return url.replace(f":{password}@", ":***@") if password else url


def _database(url: str) -> dict:
    masked = _without_password(url)
    scheme = url.partition("://")[0]
    if scheme not in environ.Env.DB_SCHEMES:
        raise ConfigError(
            f"DATABASE_URL={masked!r} has an unknown scheme {scheme!r}: use sqlite:/// or postgres://"
        )
    try:
        database = environ.Env.db_url_config(url)
    except Exception as error:
        raise ConfigError(f"DATABASE_URL={masked!r} is not a database URL: {error}") from None
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # Web threads and the in-process queue write at once: wait for the lock, don't fail.
        database["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        database["CONN_MAX_AGE"] = _config.value("DATABASE_CONN_MAX_AGE")
        database["CONN_HEALTH_CHECKS"] = True
    return database


# --- Core
def _secret_key() -> str:
    """Every host of a deployment must share one key (sessions and CSRF tokens signed on one
    host are checked on the others): generated into managed.env only for a machine serving
    itself (ALLOWED_HOSTS loopback only, as `make run`); a real deployment sets it."""
    key = _config.value("SECRET_KEY")
    if key:
        return key
    if not set(_config.value("ALLOWED_HOSTS")) <= {"127.0.0.1", "localhost", "::1", "[::1]"}:
        raise ConfigError(
            "SECRET_KEY is not set, and ALLOWED_HOSTS names a real host: set one SECRET_KEY for every "
            "host of the deployment (python -c 'from django.core.management.utils import "
            "get_random_secret_key as k; print(k())'), in the environment or managed.env"
        )
    return _config.store.setdefault("SECRET_KEY", get_random_secret_key())


SECRET_KEY = _secret_key()
DEBUG = _config.value("DEBUG")
DEPLOYMENT_ENVIRONMENT = _config.value("DEPLOYMENT_ENVIRONMENT")
ALLOWED_HOSTS = _config.value("ALLOWED_HOSTS")
MRDJ_BASE_URL = _config.value("MRDJ_BASE_URL").rstrip("/")
LOG_LEVEL = _config.value("LOG_LEVEL")

# --- Database and queue
# What cannot run on a stand-in stops start-up when it is invalid; the rest degrades.
DATABASES = {"default": _database(_config.strict("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
REDIS_URL = _config.strict("REDIS_URL")
if urlsplit(REDIS_URL).scheme not in ("redis", "rediss", "unix"):
    raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
QUEUE_REDIS_ENABLED = _config.value("QUEUE_REDIS_ENABLED")

# --- Celery: the database holds the truth; the broker only carries work.
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT = "mrdj.broker:Transport"  # kombu's Redis transport, surviving outages
CELERY_RESULT_BACKEND = "django-db"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Celery gives up after 100 reconnection attempts by default, and the worker exits: a
# broker outage longer than that must not need a person to restart the worker.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Past this, Redis hands an unacknowledged task to another worker; the job's own
    # claim lease (QUEUE_LEASE_MS) recovers it long before.
    "visibility_timeout": 3600,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TASK_IGNORE_RESULT = True
# Keep a worker's database connection across tasks (Celery's Django fix-up otherwise
# reconnects around every task, which costs more than a delivery); CONN_MAX_AGE and
# the health checks still retire old or broken connections.
CELERY_DB_REUSE_MAX = 1000
# Drains have a queue of their own: at most one per integration queue waits there, so a
# drain never waits behind a long line of other tasks (the worker takes from both queues
# in turn), and a lost one is replaced within the reconciler's interval plus
# DRAINER_TTL_MS, however long the other queue is.
# Periodic work (the reconciler, the alert tick, the dead-man's switch) has its own queue
# too, so that recovery and alerting never wait behind a backlog of other tasks.
CELERY_TASK_QUEUES = (Queue("periodic"), Queue("drain"), Queue("celery"))
PERIODIC_TASKS = (
    "integrations.reconcile",
    "alerting.tick",
    "alerting.deadman_ping",
    "personalization.purge_expired",
)
CELERY_TASK_ROUTES = {
    "integrations.drain": {"queue": "drain"},
    **{task: {"queue": "periodic"} for task in PERIODIC_TASKS},
}
# What the periodic tasks did (the reconciler's dispatches, the alerts a tick sent...) is kept
# in django-celery-results, shown in the admin (Celery Results > Task results) with the task's
# name and arguments; every other task ignores its result (CELERY_TASK_IGNORE_RESULT): a drain
# runs once per batch, too many rows with nothing to read. Results expire after a day; when
# CELERY_RESULT_EXPIRES is set, beat schedules Celery's own celery.backend_cleanup (04:00 daily)
# that deletes the expired ones, about 36,000 rows a day at the default intervals.
CELERY_TASK_ANNOTATIONS = {task: {"ignore_result": False} for task in PERIODIC_TASKS}
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = timedelta(days=1)
# Task events for Flower and `celery events`: the worker's (received, started, succeeded...)
# and the producer's "sent", so that tasks waiting in a queue are visible. Cost: one small
# message per task state on the broker; drains are one task per batch of jobs, not per job.
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


def _beat_seconds(variable: str) -> int:
    """django-celery-beat stores an interval in whole seconds (0.5 s would be stored as 0 and
    run without pause): whole seconds, at least one. A beat task that waited longer than its
    interval (no worker for a while) expires rather than piling up."""
    return max(1, math.ceil(_config.value(variable) / 1000))


_RECONCILE_SECONDS = _beat_seconds("QUEUE_RECONCILE_INTERVAL_MS")
_ALERT_TICK_SECONDS = _beat_seconds("ALERT_EVALUATE_INTERVAL_MS")
_HEARTBEAT_SECONDS = _beat_seconds("HEARTBEAT_INTERVAL_MS")
CELERY_BEAT_SCHEDULE = {
    "integrations-reconcile": {
        "task": "integrations.reconcile",
        "schedule": _RECONCILE_SECONDS,
        "options": {"expires": _RECONCILE_SECONDS},
    },
    "personalization-retention": {
        "task": "personalization.purge_expired",
        "schedule": 3600,  # hourly: events past PERSONALIZATION_RETENTION_DAYS go within the hour
    },
    # Deadlines (acknowledge, Jira, DR, resolve) and failed deliveries; queue events evaluate at once.
    "alerting-tick": {
        "task": "alerting.tick",
        "schedule": _ALERT_TICK_SECONDS,
        "options": {"expires": _ALERT_TICK_SECONDS},
    },
    # The dead-man's switch: pings HEARTBEAT_URL (its /fail form when mrdj is unwell); none when empty.
    "alerting-deadman": {
        "task": "alerting.deadman_ping",
        "schedule": _HEARTBEAT_SECONDS,
        "options": {"expires": _HEARTBEAT_SECONDS},
    },
}
CELERY_TIMEZONE = "UTC"

# --- Applications
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_results",
    "django_celery_beat",
    "mrdj",
    "integrations",
    "alerting",
    "incidents",
    "personalization",
    "dashboard",
]
MIDDLEWARE = [
    # A server span per request from opentelemetry-instrumentation-django, first so that it
    # covers all the rest; one attribute check per request while telemetry is off
    # (mrdj/telemetry/server_spans.py, docs/telemetry.md).
    "mrdj.telemetry.server_spans.ServerSpanMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "mrdj.urls"
WSGI_APPLICATION = "mrdj.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# --- Time and language
LANGUAGE_CODE = "en"
TIME_ZONE = _config.value("TIME_ZONE")
USE_I18N = True
USE_TZ = True

# --- Static files, served by WhiteNoise from the web process
STATIC_URL = "/static/"
STATIC_ROOT = str(BASE_DIR / _config.value("STATIC_ROOT"))  # an absolute path stays as it is

# --- Security: secure cookies whenever the site is served over https
_https = MRDJ_BASE_URL.startswith("https://")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _https
CSRF_TRUSTED_ORIGINS = [MRDJ_BASE_URL] if _https else []
_behind_proxy = _config.value("TRUST_X_FORWARDED_PROTO")
if _behind_proxy:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
_redirect = _config.value("SECURE_SSL_REDIRECT")
SECURE_SSL_REDIRECT = _redirect == "ON" or (_redirect == "AUTO" and _https and _behind_proxy)
SECURE_HSTS_SECONDS = _config.value("SECURE_HSTS_SECONDS")
SECURE_HSTS_INCLUDE_SUBDOMAINS = _config.value("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = _config.value("SECURE_HSTS_PRELOAD")
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # A collector that is down would otherwise log a retry warning every second per process;
    # the failures that matter are errors, and the telemetry_silent alert says it once.
    "loggers": {"opentelemetry": {"level": "ERROR"}},
}

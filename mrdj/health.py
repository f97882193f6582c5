"""Reachability checks of the services mrdj depends on, for /healthz and readiness."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.db import connection

from mrdj.config import get_config

CHECK_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        # The class name says what broke without echoing connection strings.
        return Check("database", False, f"unreachable ({type(error).__name__})")
    return Check("database", True, connection.vendor)


def check_redis(url: str | None = None) -> Check:
    client = redis.Redis.from_url(
        url or get_config().value("REDIS_URL"),
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except Exception as error:
        return Check("redis", False, f"unreachable ({type(error).__name__})")
    finally:
        client.close()
    return Check("redis", True, "ping ok")


def queue_uses_redis() -> bool:
    return get_config().value("QUEUE_REDIS_ENABLED")


def service_checks() -> list[Check]:
    """The database always; Redis only while the queue runs over it."""
    checks = [check_database()]
    if queue_uses_redis():
        checks.append(check_redis())
    return checks


# What the apps above register (in their ready()): each returns a line per thing that runs
# degraded, such as a stalled queue. /healthz then answers 200 "degraded" naming them (a
# load balancer keeps the instance: the instance itself is fine) and readiness fails.
DEGRADATIONS: list[Callable[[], list[str]]] = []


def degradations() -> list[str]:
    lines = []
    for source in DEGRADATIONS:
        try:
            lines += source()
        except Exception as error:  # a check that breaks says so; it does not fail /healthz
            lines.append(f"{getattr(source, '__module__', 'a check')} could not run ({type(error).__name__})")
    return lines

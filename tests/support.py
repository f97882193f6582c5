"""Helpers shared by test modules: staff users, CSRF-enforcing clients, jobs in a given state."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from integrations import batches, operations
from integrations.delivery import QueueSettings
from integrations.models import Job, Status
from integrations.queues import QUEUES
from mrdj.config import get_config


def staff(*permissions: str) -> User:
    user = User.objects.create_user(f"ops-{len(permissions)}-{User.objects.count()}", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def csrf_client(user: User) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/admin/")  # sets the csrftoken cookie
    return client, client.cookies["csrftoken"].value


def put_jobs(queue: str, status: str, count: int, age: timedelta = timedelta(0)) -> list[int]:
    """count jobs accepted age ago, moved to status, with the counters rebuilt: real rows,
    the same figures /metrics/queues shows."""
    now = timezone.now()
    due = now + timedelta(hours=1) if status == Status.RETRY else now
    # Stored in their final state at once: a running worker must not take them on the way.
    jobs = Job.objects.bulk_create(
        Job(
            queue=QUEUES[queue].name,
            payload={"n": n},
            idempotency_key=uuid.uuid4().hex,
            status=status,
            created_at=now - age,
            next_attempt_at=due,
        )
        for n in range(count)
    )
    operations.recount()
    return [job.pk for job in jobs]


def claim(queue: str, want: int = 1) -> list[batches.ClaimedJob]:
    """Claim due jobs as a worker does (and then, in the test, never finish them)."""
    return batches.claim(QUEUES[queue], want, QueueSettings.read(get_config())).jobs


def kill_this_connection() -> None:
    """Terminate the PostgreSQL backend behind Django's connection from another one, as a
    database restart or pg_terminate_backend would; skips the test on SQLite."""
    import pytest
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    other = connection.copy()
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    other.close()


def flowing(managed_env) -> None:
    """Nothing but the figures can make a card red: upstream URLs and tokens are set (to a
    closed loopback port: no job is tried here) and an in-process worker has just beaten."""
    from integrations import heartbeat

    managed_env.update(
        {
            "RENTGUY_API_URL": "http://127.0.0.1:9/leads",
            "SEVENSA_SUBMIT_URL": "http://127.0.0.1:9/submit",
            "RENTGUY_API_TOKEN": "rentguy-upstream-secret",
            "SEVENSA_API_TOKEN": "sevensa-upstream-secret",
        }
    )
    heartbeat.record("in-process")

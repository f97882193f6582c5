"""Job transitions in one statement each, for PostgreSQL: the hot path of every delivery.

A data-modifying CTE claims or finishes the job, records the attempt and moves the
queue counter in a single round trip and a single implicit transaction; the ORM
version in services does the same in several (and is what SQLite runs).

They run as prepared statements (planned once per connection, not per job), and
commit without waiting for the disk flush (synchronous_commit off, for that
transaction only, set by the statement itself). A database crash can forget the last fraction of a second of
claims and results; such a job is then tried again (at-least-once, and its
Idempotency-Key lets the upstream drop the duplicate), never lost. Intake, flush
and replay keep full durability.
"""

from __future__ import annotations

import json
from datetime import datetime

import psycopg
from django.db import connection
from psycopg.types.json import Jsonb

from integrations.models import Job

CLAIM = """
WITH relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true)
), picked AS (
    SELECT id, status FROM integrations_job
    WHERE id = %(id)s AND status IN ('pending', 'retry') AND next_attempt_at <= %(now)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE integrations_job AS job
    SET status = 'active', claimed_at = %(now)s, claim_token = %(token)s,
        attempts = job.attempts + 1, dispatched_at = NULL
    FROM picked WHERE job.id = picked.id
    RETURNING job.id, job.queue, job.payload, job.idempotency_key, job.attempts,
              job.created_at, job.next_attempt_at, picked.status AS previous
), counted AS (
    INSERT INTO integrations_queuecounter AS counter (queue, status, count)
    SELECT queue, previous, -1 FROM claimed
    ON CONFLICT (queue, status) DO UPDATE SET count = counter.count - 1
)
SELECT id, queue, payload, idempotency_key, attempts, created_at, next_attempt_at FROM claimed, relaxed
"""

FINISH = """
WITH relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true)
), finished AS (
    UPDATE integrations_job
    SET status = %(status)s, next_attempt_at = %(next_attempt_at)s, finished_at = %(finished_at)s,
        claimed_at = NULL, claim_token = '', last_status_code = %(status_code)s, last_error = %(error)s
    WHERE id = %(id)s AND status = 'active' AND claim_token = %(token)s
    RETURNING id, queue
), attempt AS (
    INSERT INTO integrations_attempt (job_id, number, started_at, duration_ms, status_code, error, outcome)
    SELECT %(id)s, %(number)s, %(started_at)s, %(duration_ms)s, %(status_code)s, %(error)s,
           CASE WHEN EXISTS (SELECT 1 FROM finished) THEN %(status)s ELSE 'stale' END
), counted AS (
    INSERT INTO integrations_queuecounter AS counter (queue, status, count)
    SELECT queue, %(status)s, 1 FROM finished WHERE %(status)s <> 'done'
    ON CONFLICT (queue, status) DO UPDATE SET count = counter.count + 1
)
SELECT count(*) FROM finished, relaxed
"""


def _execute(sql: str, params: dict) -> tuple | None:
    """Run sql as a prepared statement on Django's connection (in its transaction, if any)."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()


def claim(job_id: int, now: datetime, token: str) -> Job | None:
    row = _execute(CLAIM, {"id": job_id, "now": now, "token": token})
    if row is None:
        return None
    pk, queue, payload, key, attempts, created_at, next_attempt_at = row
    return Job(
        pk=pk,
        queue=queue,
        payload=json.loads(payload) if isinstance(payload, str) else payload,
        idempotency_key=key,
        attempts=attempts,
        created_at=created_at,
        next_attempt_at=next_attempt_at,
        status="active",
        claimed_at=now,
        claim_token=token,
    )


def finish(job: Job, values: dict, started_at: datetime, duration_ms: int) -> bool:
    """values: the job's new status, next_attempt_at, finished_at, last_status_code, last_error."""
    params = {
        "id": job.pk,
        "token": job.claim_token,
        "status": values["status"],
        "next_attempt_at": values["next_attempt_at"],
        "finished_at": values["finished_at"],
        "status_code": values["last_status_code"],
        "error": values["last_error"],
        "number": job.attempts,
        "started_at": started_at,
        "duration_ms": duration_ms,
    }
    return _execute(FINISH, params)[0] == 1


ENQUEUE = """
WITH inserted AS (
    INSERT INTO integrations_job (queue, status, payload, idempotency_key, attempts, created_at,
                                  next_attempt_at, dispatched_at, claim_token, last_error)
    VALUES (%(queue)s, 'pending', %(payload)s, %(key)s, 0, %(now)s, %(now)s, %(dispatched_at)s, '', '')
    ON CONFLICT (queue, idempotency_key) DO NOTHING
    RETURNING id
), counted AS (
    INSERT INTO integrations_queuecounter AS counter (queue, status, count)
    SELECT %(queue)s, 'pending', 1 FROM inserted
    ON CONFLICT (queue, status) DO UPDATE SET count = counter.count + 1
)
SELECT id FROM inserted
"""


def enqueue(queue: str, payload: dict, key: str, now: datetime, dispatched_at: datetime | None) -> int | None:
    """Store a pending job and count it; None when the key is already taken (nothing stored)."""
    row = _execute(
        ENQUEUE,
        {"queue": queue, "payload": Jsonb(payload), "key": key, "now": now, "dispatched_at": dispatched_at},
    )
    return row[0] if row else None

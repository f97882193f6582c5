"""Job transitions for PostgreSQL in one statement each: the hot path of intake and delivery.

A data-modifying CTE claims a batch, finishes a batch or stores jobs, records the
attempts and moves the queue counters in a single round trip; the ORM versions in
batches and services do the same in several (and are what SQLite runs).

They run as prepared statements (planned once per connection), and claims and
results commit without waiting for the disk flush (synchronous_commit off, for
that transaction only, set by the statement itself). A database crash can forget
the last fraction of a second of claims and results; such a job is then tried
again (at-least-once, and its Idempotency-Key lets the upstream drop the
duplicate), never lost. Intake, flush and replay keep full durability.
"""

from __future__ import annotations

import json
from datetime import datetime

import psycopg
from django.db import connection
from psycopg.types.json import Jsonb

from integrations.models import Attempt, Job, QueueCounter, UpstreamState

TABLES = {
    "job": Job._meta.db_table,
    "attempt": Attempt._meta.db_table,
    "counter": QueueCounter._meta.db_table,
    "state": UpstreamState._meta.db_table,
}
STATE_COLUMNS = [field.column for field in UpstreamState._meta.concrete_fields]

LOCK_STATE = """
SELECT {columns} FROM {state} WHERE queue = %(queue)s FOR UPDATE
""".format(columns=", ".join(STATE_COLUMNS), **TABLES)
# A statement of its own, after the lock: a statement's snapshot is taken when it starts,
# so a count in the locking statement would miss the claims of whoever held the lock.
COUNT_ACTIVE = """
SELECT count(*) FROM {job} WHERE queue = %(queue)s AND status = 'active'
""".format(**TABLES)

CLAIM_DUE = """
WITH relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true)
), candidates AS (
    (SELECT id, next_attempt_at FROM {job}
     WHERE queue = %(queue)s AND status = 'pending' AND next_attempt_at <= %(now)s
     ORDER BY next_attempt_at LIMIT %(limit)s)
    UNION ALL
    (SELECT id, next_attempt_at FROM {job}
     WHERE queue = %(queue)s AND status = 'retry' AND next_attempt_at <= %(now)s
     ORDER BY next_attempt_at LIMIT %(limit)s)
), picked AS (
    SELECT id, status FROM {job}
    WHERE id IN (SELECT id FROM candidates ORDER BY next_attempt_at LIMIT %(limit)s)
      AND status IN ('pending', 'retry')
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE {job} AS job
    SET status = 'active', claimed_at = %(now)s, claim_token = %(token)s, attempts = job.attempts + 1
    FROM picked WHERE job.id = picked.id
    RETURNING job.id, job.payload, job.idempotency_key, job.attempts, job.created_at, job.trace_parent,
              job.next_attempt_at, picked.status AS previous
), counted AS (
    INSERT INTO {counter} AS counter (queue, status, count)
    SELECT %(queue)s, previous, -count(*) FROM claimed GROUP BY previous
    ON CONFLICT (queue, status) DO UPDATE SET count = counter.count + EXCLUDED.count
)
SELECT id, payload, idempotency_key, attempts, created_at, trace_parent
FROM claimed, relaxed ORDER BY next_attempt_at
""".format(**TABLES)  # noqa: S608 (table names from the models, values as parameters)

FINISH_BATCH = """
WITH relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true)
), input AS (
    SELECT * FROM unnest(
        %(id)s::bigint[], %(token)s::text[], %(status)s::text[], %(next_attempt_at)s::timestamptz[],
        %(finished_at)s::timestamptz[], %(status_code)s::int[], %(error)s::text[], %(attempts)s::int[],
        %(number)s::int[], %(started_at)s::timestamptz[], %(duration_ms)s::int[], %(counted)s::bool[],
        %(answer)s::text[]
    ) AS row (id, token, status, next_attempt_at, finished_at, status_code, error, attempts,
              number, started_at, duration_ms, counted, answer)
), finished AS (
    UPDATE {job} AS job
    SET status = input.status, next_attempt_at = input.next_attempt_at, finished_at = input.finished_at,
        claimed_at = NULL, claim_token = '', last_status_code = input.status_code,
        last_error = input.error, attempts = input.attempts
    FROM input
    WHERE job.id = input.id AND job.status = 'active' AND job.claim_token = input.token
    RETURNING job.id, job.status
), attempt AS (
    INSERT INTO {attempt} (job_id, number, started_at, duration_ms, status_code, error, outcome, counted,
                           answer)
    SELECT input.id, input.number, input.started_at, input.duration_ms, input.status_code, input.error,
           CASE WHEN finished.id IS NULL THEN 'stale' ELSE input.status END, input.counted, input.answer
    FROM input LEFT JOIN finished ON finished.id = input.id
), counted AS (
    INSERT INTO {counter} AS counter (queue, status, count)
    SELECT %(queue)s, status, count(*) FROM finished WHERE status <> 'done' GROUP BY status
    ON CONFLICT (queue, status) DO UPDATE SET count = counter.count + EXCLUDED.count
)
SELECT finished.id FROM finished, relaxed
""".format(**TABLES)  # noqa: S608 (table names from the models, values as parameters)

FINISH_COLUMNS = (
    "id",
    "token",
    "status",
    "next_attempt_at",
    "finished_at",
    "status_code",
    "error",
    "attempts",
    "number",
    "started_at",
    "duration_ms",
    "counted",
    "answer",
)

ENQUEUE = """
WITH input AS (
    SELECT * FROM unnest(%(payload)s::jsonb[], %(key)s::text[])
        WITH ORDINALITY AS row (payload, key, position)
), inserted AS (
    INSERT INTO {job} (queue, status, payload, idempotency_key, attempts, created_at,
                       next_attempt_at, claim_token, last_error, trace_parent)
    SELECT %(queue)s, 'pending', payload, key, 0, %(now)s, %(now)s, '', '', %(trace)s
    FROM input ORDER BY position
    ON CONFLICT (queue, idempotency_key) DO NOTHING
    RETURNING id, idempotency_key
), counted AS (
    INSERT INTO {counter} AS counter (queue, status, count)
    SELECT %(queue)s, 'pending', count(*) FROM inserted HAVING count(*) > 0
    ON CONFLICT (queue, status) DO UPDATE SET count = counter.count + EXCLUDED.count
)
SELECT id, idempotency_key FROM inserted
""".format(**TABLES)  # noqa: S608 (table names from the models, values as parameters)


def _rows(sql: str, params: dict) -> list[tuple]:
    """Run sql as a prepared statement on Django's connection (in its transaction, if any).

    Errors pass through Django's wrapper as on any ORM query: they arrive as Django's
    database errors, and a connection they broke is replaced at the next
    close_old_connections() (the end of a request, the engine's next round).
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()


def lock_state(queue: str) -> UpstreamState | None:
    """The queue's UpstreamState, locked, with active: its jobs in flight, counted once the
    lock is held."""
    rows = _rows(LOCK_STATE, {"queue": queue})
    if not rows:
        return None
    state = UpstreamState.from_db(connection.alias, STATE_COLUMNS, rows[0])
    state.active = _rows(COUNT_ACTIVE, {"queue": queue})[0][0]
    return state


def claim_due(queue: str, limit: int, now: datetime, token: str) -> list[tuple]:
    """Claim up to limit due jobs, oldest due first: (id, payload, key, attempts, created_at, trace)."""
    rows = _rows(CLAIM_DUE, {"queue": queue, "limit": limit, "now": now, "token": token})
    return [(row[0], _json(row[1]), *row[2:]) for row in rows]


def finish_batch(queue: str, values: list[dict]) -> set[int]:
    """Write each try's result; returns the ids whose claim still held (the others were stale)."""
    params = {column: [row[column] for row in values] for column in FINISH_COLUMNS}
    return {pk for (pk,) in _rows(FINISH_BATCH, {"queue": queue, **params})}


def enqueue(queue: str, items: list[tuple[dict, str]], now: datetime, trace: str) -> dict[str, int]:
    """Store pending jobs (payload, key) and count them; returns the new ids by key.
    A key already stored (or repeated) stores nothing more."""
    params = {
        "queue": queue,
        "payload": [Jsonb(payload) for payload, _ in items],
        "key": [key for _, key in items],
        "now": now,
        "trace": trace,
    }
    return {key: pk for pk, key in _rows(ENQUEUE, params)}


def _json(value):
    return json.loads(value) if isinstance(value, str) else value

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

The statements are composed once, at import, from the models: table and column names
from their _meta (quoted), statuses from Status. A table or column renamed in a model
(db_table, db_column) is renamed here too; a field renamed or removed fails the import
(FieldDoesNotExist, naming it). tests/test_postgres_sql.py holds them to that.
"""

from __future__ import annotations

import json
from datetime import datetime

import psycopg
from django.db import connection
from django.db.models import Model
from psycopg.types.json import Jsonb

from integrations.models import Attempt, Job, QueueCounter, Status, UpstreamState


class _Names:
    """A model's quoted table name (formatted as itself) and column names (as attributes):
    "{Job}" and "{Job.status}" in a statement's text."""

    def __init__(self, model: type[Model]) -> None:
        self._meta = model._meta

    def __str__(self) -> str:
        return connection.ops.quote_name(self._meta.db_table)

    def __getattr__(self, name: str) -> str:
        return connection.ops.quote_name(self._meta.get_field(name).column)


def _literal(value: str) -> str:
    return "'{}'".format(value.replace("'", "''"))


NAMES = {
    "Job": _Names(Job),
    "Attempt": _Names(Attempt),
    "Counter": _Names(QueueCounter),
    "State": _Names(UpstreamState),
    **{status.name: _literal(status.value) for status in Status},
    "STALE": _literal(Attempt.STALE),
}


def _sql(text: str, **more: str) -> str:
    return text.format(**NAMES, **more)


STATE_FIELDS = [field.attname for field in UpstreamState._meta.concrete_fields]

LOCK_STATE = _sql(
    """
SELECT {columns} FROM {State} WHERE {State.queue} = %(queue)s FOR UPDATE
""",
    columns=", ".join(getattr(NAMES["State"], name) for name in STATE_FIELDS),
)
# A statement of its own, after the lock: a statement's snapshot is taken when it starts,
# so a count in the locking statement would miss the claims of whoever held the lock.
COUNT_ACTIVE = _sql("""
SELECT count(*) FROM {Job} WHERE {Job.queue} = %(queue)s AND {Job.status} = {ACTIVE}
""")

CLAIM_DUE = _sql("""
WITH relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true)
), candidates AS (
    (SELECT {Job.id}, {Job.next_attempt_at} FROM {Job}
     WHERE {Job.queue} = %(queue)s AND {Job.status} = {PENDING} AND {Job.next_attempt_at} <= %(now)s
     ORDER BY {Job.next_attempt_at} LIMIT %(limit)s)
    UNION ALL
    (SELECT {Job.id}, {Job.next_attempt_at} FROM {Job}
     WHERE {Job.queue} = %(queue)s AND {Job.status} = {RETRY} AND {Job.next_attempt_at} <= %(now)s
     ORDER BY {Job.next_attempt_at} LIMIT %(limit)s)
), picked AS (
    SELECT {Job.id}, {Job.status} FROM {Job}
    WHERE {Job.id} IN (SELECT {Job.id} FROM candidates ORDER BY {Job.next_attempt_at} LIMIT %(limit)s)
      AND {Job.status} IN ({PENDING}, {RETRY})
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE {Job} AS job
    SET {Job.status} = {ACTIVE}, {Job.claimed_at} = %(now)s, {Job.claim_token} = %(token)s,
        {Job.attempts} = job.{Job.attempts} + 1
    FROM picked WHERE job.{Job.id} = picked.{Job.id}
    RETURNING job.{Job.id} AS id, job.{Job.payload} AS payload, job.{Job.idempotency_key} AS idempotency_key,
              job.{Job.attempts} AS attempts, job.{Job.created_at} AS created_at,
              job.{Job.trace_parent} AS trace_parent, job.{Job.next_attempt_at} AS next_attempt_at,
              picked.{Job.status} AS previous
), counted AS (
    INSERT INTO {Counter} AS counter ({Counter.queue}, {Counter.status}, {Counter.count})
    SELECT %(queue)s, previous, -count(*) FROM claimed GROUP BY previous
    ON CONFLICT ({Counter.queue}, {Counter.status})
    DO UPDATE SET {Counter.count} = counter.{Counter.count} + EXCLUDED.{Counter.count}
)
SELECT id, payload, idempotency_key, attempts, created_at, trace_parent
FROM claimed, relaxed ORDER BY next_attempt_at
""")

FINISH_BATCH = _sql("""
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
    UPDATE {Job} AS job
    SET {Job.status} = input.status, {Job.next_attempt_at} = input.next_attempt_at,
        {Job.finished_at} = input.finished_at, {Job.claimed_at} = NULL, {Job.claim_token} = '',
        {Job.last_status_code} = input.status_code, {Job.last_error} = input.error,
        {Job.attempts} = input.attempts
    FROM input
    WHERE job.{Job.id} = input.id AND job.{Job.status} = {ACTIVE} AND job.{Job.claim_token} = input.token
    RETURNING job.{Job.id} AS id, job.{Job.status} AS status
), attempt AS (
    INSERT INTO {Attempt} ({Attempt.job}, {Attempt.number}, {Attempt.started_at}, {Attempt.duration_ms},
                           {Attempt.status_code}, {Attempt.error}, {Attempt.outcome}, {Attempt.counted},
                           {Attempt.answer})
    SELECT input.id, input.number, input.started_at, input.duration_ms, input.status_code, input.error,
           CASE WHEN finished.id IS NULL THEN {STALE} ELSE input.status END, input.counted, input.answer
    FROM input LEFT JOIN finished ON finished.id = input.id
), counted AS (
    INSERT INTO {Counter} AS counter ({Counter.queue}, {Counter.status}, {Counter.count})
    SELECT %(queue)s, status, count(*) FROM finished WHERE status <> {DONE} GROUP BY status
    ON CONFLICT ({Counter.queue}, {Counter.status})
    DO UPDATE SET {Counter.count} = counter.{Counter.count} + EXCLUDED.{Counter.count}
)
SELECT finished.id FROM finished, relaxed
""")

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

ENQUEUE = _sql("""
WITH input AS (
    SELECT * FROM unnest(%(payload)s::jsonb[], %(key)s::text[])
        WITH ORDINALITY AS row (payload, key, position)
), inserted AS (
    INSERT INTO {Job} ({Job.queue}, {Job.status}, {Job.payload}, {Job.idempotency_key}, {Job.attempts},
                       {Job.created_at}, {Job.next_attempt_at}, {Job.claim_token}, {Job.last_error},
                       {Job.trace_parent})
    SELECT %(queue)s, {PENDING}, payload, key, 0, %(now)s, %(now)s, '', '', %(trace)s
    FROM input ORDER BY position
    ON CONFLICT ({Job.queue}, {Job.idempotency_key}) DO NOTHING
    RETURNING {Job.id} AS id, {Job.idempotency_key} AS idempotency_key
), counted AS (
    INSERT INTO {Counter} AS counter ({Counter.queue}, {Counter.status}, {Counter.count})
    SELECT %(queue)s, {PENDING}, count(*) FROM inserted HAVING count(*) > 0
    ON CONFLICT ({Counter.queue}, {Counter.status})
    DO UPDATE SET {Counter.count} = counter.{Counter.count} + EXCLUDED.{Counter.count}
)
SELECT id, idempotency_key FROM inserted
""")

STATEMENTS = {
    "LOCK_STATE": LOCK_STATE,
    "COUNT_ACTIVE": COUNT_ACTIVE,
    "CLAIM_DUE": CLAIM_DUE,
    "FINISH_BATCH": FINISH_BATCH,
    "ENQUEUE": ENQUEUE,
}


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
    state = UpstreamState.from_db(connection.alias, STATE_FIELDS, rows[0])
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

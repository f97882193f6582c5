"""The PostgreSQL hot path's statements name only what the models define, and follow them."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import connection, transaction
from django.utils import timezone

from integrations import postgres
from integrations.models import Attempt, Job, QueueCounter, Status, UpstreamState

MODELS = (Job, Attempt, QueueCounter, UpstreamState)
QUOTED = re.compile(r'"([^"]+)"')
LITERAL = re.compile(r"'([^']*)'")
# Written by hand on purpose: a setting's name and value, and an empty claim token.
OTHER_LITERALS = {"synchronous_commit", "off", ""}


def model_names() -> set[str]:
    names = set()
    for model in MODELS:
        names.add(model._meta.db_table)
        names.update(field.column for field in model._meta.concrete_fields)
    return names


def test_it_names_only_tables_and_columns_the_models_have():
    known = model_names()
    for name, sql in postgres.STATEMENTS.items():
        quoted = set(QUOTED.findall(sql))
        assert quoted, name
        assert quoted <= known, (name, quoted - known)


def test_it_writes_only_statuses_the_models_define():
    allowed = {status.value for status in Status} | {Attempt.STALE} | OTHER_LITERALS
    for name, sql in postgres.STATEMENTS.items():
        assert set(LITERAL.findall(sql)) <= allowed, name


def test_it_qualifies_no_column_by_hand():
    """job.status typed as such would not follow a rename: every column read through an alias
    of a model's table (or of a CTE selecting its columns) is quoted, composed from the model."""
    for name, sql in postgres.STATEMENTS.items():
        assert not re.findall(r"\b(?:job|counter|picked)\.(?!\")\w+", sql), name


def test_it_follows_a_renamed_table_and_column():
    claim_token = Job._meta.get_field("claim_token")
    count = QueueCounter._meta.get_field("count")
    try:
        with (
            mock.patch.object(Job._meta, "db_table", "jobs_renamed"),
            mock.patch.object(claim_token, "column", "claim_renamed"),
            mock.patch.object(count, "column", "tally"),
        ):
            renamed = importlib.reload(postgres)
            statements = dict(renamed.STATEMENTS)
    finally:
        importlib.reload(postgres)

    everything = "\n".join(statements.values())
    assert '"claim_renamed" = %(token)s' in statements["CLAIM_DUE"]
    assert 'INSERT INTO "jobs_renamed"' in statements["ENQUEUE"]
    assert '"tally" = counter."tally" + EXCLUDED."tally"' in statements["FINISH_BATCH"]
    for old in ('"claim_token"', f'"{Job._meta.db_table}"', '"count"'):
        assert old not in everything
    assert '"claim_token"' in postgres.CLAIM_DUE  # and back once the model is


def test_a_removed_field_fails_the_import():
    gone = FieldDoesNotExist("Job has no field named 'claim_token'")
    try:
        with mock.patch.object(Job._meta, "get_field", side_effect=gone), pytest.raises(FieldDoesNotExist):
            importlib.reload(postgres)
    finally:
        importlib.reload(postgres)


@pytest.mark.django_db
def test_it_enqueues_claims_and_finishes_against_the_migrated_schema():
    """The statements run on the schema the migrations built from the models."""
    if connection.vendor != "postgresql":
        pytest.skip("the statements are PostgreSQL's")
    now = timezone.now()
    UpstreamState.objects.create(queue="rentguy")
    items = [({"n": 1}, "k1"), ({"n": 2}, "k2"), ({"n": 3}, "k3"), ({"n": 4}, "k3")]
    ids = postgres.enqueue("rentguy", items, now, "")
    assert set(ids) == {"k1", "k2", "k3"}
    assert QueueCounter.objects.counts() == {"rentguy": {Status.PENDING: 3}}

    with transaction.atomic():
        state = postgres.lock_state("rentguy")
        assert (state.queue, state.active) == ("rentguy", 0)
        claimed = postgres.claim_due("rentguy", 5, now, "token-1")
    assert [(row[1], row[2], row[3]) for row in claimed] == [
        ({"n": 1}, "k1", 1),
        ({"n": 2}, "k2", 1),
        ({"n": 3}, "k3", 1),
    ]
    assert QueueCounter.objects.counts() == {"rentguy": {Status.PENDING: 0}}
    with transaction.atomic():
        assert postgres.lock_state("rentguy").active == 3

    later = now + timedelta(seconds=1)

    def result(pk: int, token: str, status: str) -> dict:
        return {
            "id": pk,
            "token": token,
            "status": status,
            "next_attempt_at": later,
            "finished_at": later if status == Status.DONE else None,
            "status_code": 200 if status == Status.DONE else 503,
            "error": "",
            "attempts": 1,
            "number": 1,
            "started_at": now,
            "duration_ms": 5,
            "counted": True,
            "answer": "ok",
        }

    finished = postgres.finish_batch(
        "rentguy",
        [
            result(ids["k1"], "token-1", Status.DONE),
            result(ids["k2"], "token-1", Status.RETRY),
            result(ids["k3"], "a stale claim", Status.DONE),
        ],
    )

    assert finished == {ids["k1"], ids["k2"]}
    assert dict(Job.objects.values_list("idempotency_key", "status")) == {
        "k1": Status.DONE,
        "k2": Status.RETRY,
        "k3": Status.ACTIVE,
    }
    assert Job.objects.get(pk=ids["k2"]).claim_token == ""
    assert sorted(Attempt.objects.values_list("outcome", flat=True)) == sorted(
        [Status.DONE, Status.RETRY, Attempt.STALE]
    )
    assert QueueCounter.objects.counts() == {"rentguy": {Status.PENDING: 0, Status.RETRY: 1}}

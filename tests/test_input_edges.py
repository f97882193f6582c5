"""Bodies and fields a client can send that PostgreSQL, an upstream or int() cannot take: a clear
400 naming the problem, nothing stored, never a 500."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.models import Job
from mrdj.api import MAX_JSON_DEPTH, BadRequest, ascii_digits, parse_json
from tests.conftest import TOKENS

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKENS['INTEGRATIONS_API_TOKEN']}"}
OPS = {"HTTP_AUTHORIZATION": f"Bearer {TOKENS['OPS_API_TOKEN']}"}


def nested(depth: int) -> bytes:
    return b'{"payload": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"payload": {"guests": NaN}}', "NaN is not a JSON number"),
        (b'{"payload": {"guests": Infinity}}', "Infinity is not a JSON number"),
        (b'{"payload": {"guests": -Infinity}}', "-Infinity is not a JSON number"),
        (b'{"payload": {"guests": 1e400}}', "a number too large to store: 1e400"),
        (b'{"payload": {"name": "\\ud800"}}', "a lone surrogate"),
        (b'{"payload": {"name": "a\\u0000b"}}', "a NUL character"),
        (b'{"payload": {"\\u0000": 1}}', "a NUL character"),
        (nested(MAX_JSON_DEPTH), f"nested more than {MAX_JSON_DEPTH} levels deep"),
        (nested(1000), f"nested more than {MAX_JSON_DEPTH} levels deep"),
        (nested(5000), f"nested more than {MAX_JSON_DEPTH} levels deep"),
        (b'{"payload": {"n": ' + b"9" * 5000 + b"}}", "not valid JSON"),
        (b'{"payload": {}, "idempotency_key": "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87-x"}', "printable ASCII"),
        (b'{"payload": {}, "idempotency_key": "key\\nX-Injected: 1"}', "printable ASCII"),
        (b'{"payload": {"name": "\xff"}}', "not valid JSON"),
    ],
)
def test_intake_refuses_what_cannot_be_stored_or_sent_naming_it(client, managed_env, db, body, message):
    managed_env.update(TOKENS)

    response = client.post("/integrations/rentguy/jobs", body, content_type="application/json", **AUTH)

    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert Job.objects.count() == 0


def test_the_deepest_accepted_payload_is_stored(client, managed_env, db):
    managed_env.update(TOKENS)

    response = client.post(
        "/integrations/rentguy/jobs", nested(MAX_JSON_DEPTH - 1), content_type="application/json", **AUTH
    )

    assert response.status_code == 202
    assert Job.objects.count() == 1


@pytest.mark.parametrize("ids", ["²", "١٢", "9" * 40, "-1", ""])
def test_replay_refuses_ids_that_are_not_plain_numbers(client, managed_env, db, ids):
    managed_env.update(TOKENS)

    response = client.post("/integrations/rentguy/deadletter/replay", {"ids": ids}, **OPS)

    assert response.status_code == 400
    assert "'ids' must be job ids" in response.json()["error"]


@pytest.mark.parametrize("timestamp", ["²", "¹²³", "9" * 4000, "12.5", " 1"])
def test_the_webhook_refuses_a_timestamp_that_is_not_plain_digits_before_any_signature_check(
    client, managed_env, db, timestamp
):
    managed_env.update({"FLAG_PERSONALIZATION": "on", "PERSONALIZATION_WEBHOOK_SECRET": "s"})

    response = client.post(
        "/webhooks/personalization",
        b"{}",
        content_type="application/json",
        HTTP_X_MRDJ_TIMESTAMP=timestamp,
        HTTP_X_MRDJ_SIGNATURE="v1=00",
    )

    assert response.status_code == 401
    assert "X-MRDJ-Timestamp must be a Unix time in seconds" in response.json()["error"]


def test_ascii_digits_takes_only_0_to_9():
    assert ascii_digits("0123")
    assert not any(ascii_digits(text) for text in ["²", "١٢", "", "1 ", "+1", "1e3", "9" * 19])


STORABLE_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | STORABLE_TEXT
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(STORABLE_TEXT, children, max_size=4),
    max_leaves=30,
)


def depth(value) -> int:
    if isinstance(value, dict | list):
        children = value.values() if isinstance(value, dict) else value
        return 1 + max((depth(child) for child in children), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_any_storable_json_reads_back_as_sent(value):
    body = json.dumps(value).encode()
    if depth(value) > MAX_JSON_DEPTH:
        with pytest.raises(BadRequest, match="nested more than"):
            parse_json(body)
    else:
        assert parse_json(body) == value


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_a_string_with_nul_or_a_lone_surrogate_is_refused_and_any_other_kept(text):
    body = json.dumps({"name": text}).encode()  # \u escapes, as a client's encoder writes them
    if "\x00" in text or any("\ud800" <= char <= "\udfff" for char in text):
        with pytest.raises(BadRequest, match="NUL character or a lone surrogate"):
            parse_json(body)
    else:
        assert parse_json(body) == {"name": text}


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_either_parse_or_are_refused_with_a_reason(body):
    try:
        parse_json(body)
    except BadRequest as refused:
        assert str(refused).startswith("body ")


def test_intake_answers_503_with_retry_after_while_the_database_is_unreachable(managed_env, transactional_db):
    from django.db import close_old_connections
    from django.test import Client

    from tests.support import kill_this_connection

    managed_env.update(TOKENS)
    kill_this_connection()
    client = Client(raise_request_exception=False)
    body = json.dumps({"payload": {"lead": 1}})

    refused = client.post("/integrations/rentguy/jobs", body, content_type="application/json", **AUTH)

    assert refused.status_code == 503
    assert refused["Retry-After"] == "5"
    assert "database cannot be reached" in refused.json()["error"]
    close_old_connections()  # what the end of a real request does
    accepted = client.post("/integrations/rentguy/jobs", body, content_type="application/json", **AUTH)
    assert accepted.status_code == 202


def test_a_chunked_body_is_read_like_any_other(managed_env, transactional_db, tmp_path):
    """Through gunicorn, as clients that stream (Transfer-Encoding: chunked) reach mrdj."""
    import http.client
    from urllib.parse import urlsplit

    from tests.conftest import gunicorn

    managed_env.update(TOKENS)
    with gunicorn(managed_env, tmp_path / "web.log") as url:
        address = urlsplit(url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        chunks = iter([b'{"payload": {"lead": ', b'"streamed"}, ', b'"idempotency_key": "chunked-1"}'])
        connection.request(
            "POST",
            "/integrations/rentguy/jobs",
            body=chunks,
            headers={"Authorization": AUTH["HTTP_AUTHORIZATION"], "Content-Type": "application/json"},
            encode_chunked=True,
        )
        answer = connection.getresponse()
        status, body = answer.status, json.loads(answer.read())
        connection.close()

    assert status == 202, body
    assert Job.objects.get(idempotency_key="chunked-1").payload == {"lead": "streamed"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_ascii_digits_agrees_with_int_on_plain_decimal_numbers(text):
    if ascii_digits(text):
        assert int(text) >= 0 and str(int(text)).zfill(len(text)) == text
    else:
        assert not (0 < len(text) <= 18 and all("0" <= char <= "9" for char in text))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_an_idempotency_key_is_accepted_exactly_when_it_can_travel_as_a_header(key):
    from integrations.views import _job_item

    can_travel = 0 < len(key) <= 200 and key.strip() != "" and all(" " <= char <= "~" for char in key)
    try:
        _job_item({"payload": {}, "idempotency_key": key})
    except BadRequest as refused:
        assert not can_travel, refused
        assert "idempotency_key" in str(refused)
    else:
        assert can_travel
        key.encode("latin-1")  # what http.client sends a header value as


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_a_one_line_field_refuses_every_line_break_and_control(text):
    from mrdj.text import one_line_problem

    if not one_line_problem(text):
        assert len(text.splitlines()) <= 1  # no line or paragraph break of any kind
        assert not any(char in text for char in "\x00\x1b\x7f\u200b\u202e")  # nor controls


@settings(max_examples=200, deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_an_event_timestamp_is_stored_only_within_the_window_around_now(moment):
    from django.utils import timezone

    from personalization.visitor_events import EVENT_MAX_AGE, EVENT_MAX_AHEAD, InvalidEvent, parse_event

    event = {"event_id": "e-1", "visitor_id": "v-1", "type": "page_view", "timestamp": moment.isoformat()}
    now = timezone.now()
    try:
        stored = parse_event(event).occurred_at
    except InvalidEvent as refused:
        assert "'timestamp'" in str(refused)
    else:
        assert now - EVENT_MAX_AGE - timedelta(seconds=5) <= stored <= now + EVENT_MAX_AHEAD

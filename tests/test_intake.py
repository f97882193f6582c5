from __future__ import annotations

import json

import pytest

from integrations.models import Job, QueueCounter
from tests.conftest import TOKENS

pytestmark = pytest.mark.django_db
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKENS['INTEGRATIONS_API_TOKEN']}"}


@pytest.fixture
def tokens(managed_env):
    managed_env.update(TOKENS)
    return managed_env


def post(client, queue: str, body, **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(f"/integrations/{queue}/jobs", data=data, content_type="application/json", **headers)


def assert_nothing_stored():
    assert Job.objects.count() == 0
    assert all(counter.count == 0 for counter in QueueCounter.objects.all())


def test_it_accepts_a_job_with_202(client, tokens):
    response = post(client, "rentguy", {"payload": {"lead": "Bruiloft 12 juni"}}, **AUTH)

    assert response.status_code == 202
    job = Job.objects.get()
    assert response.json() == {"id": job.pk, "queue": "rentguy", "status": "pending"}
    assert job.payload == {"lead": "Bruiloft 12 juni"}
    assert len(job.idempotency_key) == 32  # generated
    assert QueueCounter.objects.get(queue="rentguy", status="pending").count == 1


def test_the_same_idempotency_key_answers_200_with_the_stored_job(client, tokens):
    first = post(client, "sevensa", {"payload": {"form": 1}, "idempotency_key": "form-77"}, **AUTH)
    again = post(client, "sevensa", {"payload": {"form": 1}, "idempotency_key": "form-77"}, **AUTH)

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == first.json()
    assert Job.objects.count() == 1
    assert QueueCounter.objects.get(queue="sevensa", status="pending").count == 1


def test_the_same_key_on_another_queue_is_another_job(client, tokens):
    post(client, "sevensa", {"payload": {}, "idempotency_key": "k"}, **AUTH)
    response = post(client, "rentguy", {"payload": {}, "idempotency_key": "k"}, **AUTH)

    assert response.status_code == 202
    assert Job.objects.count() == 2


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        ({"HTTP_AUTHORIZATION": "Bearer wrong"}, 401),
        ({"HTTP_AUTHORIZATION": f"Basic {TOKENS['INTEGRATIONS_API_TOKEN']}"}, 401),
        ({"HTTP_AUTHORIZATION": f"Bearer {TOKENS['OPS_API_TOKEN']}"}, 401),
    ],
)
def test_it_refuses_a_missing_or_wrong_token(client, tokens, headers, expected):
    response = post(client, "rentguy", {"payload": {}}, **headers)

    assert response.status_code == expected
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert_nothing_stored()


def test_it_refuses_every_token_while_none_is_configured(client, managed_env):
    response = post(client, "rentguy", {"payload": {}}, HTTP_AUTHORIZATION="Bearer ")

    assert response.status_code == 401
    assert_nothing_stored()


def test_an_unknown_queue_is_404(client, tokens):
    response = post(client, "mailchimp", {"payload": {}}, **AUTH)

    assert response.status_code == 404
    assert "unknown queue 'mailchimp'" in response.json()["error"]
    assert_nothing_stored()


def test_a_queue_switched_off_answers_503_naming_the_flag(client, tokens):
    tokens.set("FLAG_SEVENSA_INTEGRATION", "off")

    response = post(client, "sevensa", {"payload": {}}, **AUTH)

    assert response.status_code == 503
    assert "FLAG_SEVENSA_INTEGRATION" in response.json()["error"]
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (b"\xff\xfe", "body is not valid JSON"),
        ([1, 2], "body must be a JSON object"),
        ({"lead": "no payload key"}, "'payload' is missing"),
        ({"payload": "a string"}, "'payload' must be a JSON object, not str"),
        ({"payload": [1]}, "'payload' must be a JSON object, not list"),
        ({"payload": None}, "'payload' must be a JSON object, not NoneType"),
        ({"payload": {}, "idempotency_key": 12}, "'idempotency_key' must be a non-empty string"),
        ({"payload": {}, "idempotency_key": ""}, "'idempotency_key' must be a non-empty string"),
        ({"payload": {}, "idempotency_key": "x" * 201}, "at most 200 characters"),
        ({"payload": {}, "idempotency_key": "a\nb"}, "must be printable"),
    ],
)
def test_a_malformed_body_is_400_naming_the_problem(client, tokens, body, message):
    response = post(client, "rentguy", body, **AUTH)

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert_nothing_stored()


def test_a_body_over_256_kib_is_413(client, tokens):
    body = {"payload": {"blob": "x" * (256 * 1024)}}

    response = post(client, "rentguy", body, **AUTH)

    assert response.status_code == 413
    assert "larger than 262144 bytes" in response.json()["error"]
    assert_nothing_stored()


def test_a_body_just_under_the_limit_is_accepted(client, tokens):
    body = {"payload": {"blob": "x" * (256 * 1024 - 100)}}

    assert post(client, "rentguy", body, **AUTH).status_code == 202


def test_only_post_is_allowed(client, tokens):
    assert client.get("/integrations/rentguy/jobs", **AUTH).status_code == 405
    assert_nothing_stored()


def bulk(*items) -> dict:
    return {"jobs": list(items)}


def test_many_jobs_are_accepted_in_one_request_in_the_order_given(client, tokens):
    items = [{"payload": {"lead": n}, "idempotency_key": f"bulk-{n}"} for n in range(100)]

    response = post(client, "rentguy", bulk(*items), **AUTH)

    assert response.status_code == 202
    answer = response.json()
    assert answer["queue"] == "rentguy"
    stored = {job.idempotency_key: job for job in Job.objects.all()}
    assert [job["id"] for job in answer["jobs"]] == [stored[f"bulk-{n}"].pk for n in range(100)]
    assert {(job["status"], job["created"]) for job in answer["jobs"]} == {("pending", True)}
    assert [stored[f"bulk-{n}"].payload for n in range(100)] == [{"lead": n} for n in range(100)]
    assert QueueCounter.objects.get(queue="rentguy", status="pending").count == 100


def test_each_bulk_item_is_idempotent_on_its_own_key(client, tokens):
    first = post(client, "sevensa", {"payload": {"form": 1}, "idempotency_key": "old"}, **AUTH).json()

    response = post(
        client,
        "sevensa",
        bulk(
            {"payload": {"form": 2}, "idempotency_key": "new"},
            {"payload": {"form": 1}, "idempotency_key": "old"},
            {"payload": {"form": 3}},
            {"payload": {"form": 2}, "idempotency_key": "new"},
        ),
        **AUTH,
    )

    jobs = response.json()["jobs"]
    assert [job["created"] for job in jobs] == [True, False, True, False]
    assert jobs[1]["id"] == first["id"]
    assert jobs[3]["id"] == jobs[0]["id"]  # repeated within the request: the same job
    assert Job.objects.count() == 3
    assert QueueCounter.objects.get(queue="sevensa", status="pending").count == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (bulk(), "'jobs' must be a non-empty list"),
        ({"jobs": {"payload": {}}}, "'jobs' must be a non-empty list"),
        (bulk({"payload": {}}, {"payload": {}}, {"lead": "no payload"}), "jobs[2]: 'payload' is missing"),
        (bulk({"payload": {}}, {"payload": [1]}), "jobs[1]: 'payload' must be a JSON object, not list"),
        (bulk({"payload": {}, "idempotency_key": ""}), "jobs[0]: 'idempotency_key' must be a non-empty"),
        (bulk(*[{"payload": {}}] * 501), "'jobs' holds 501 jobs; at most 500 per request"),
    ],
)
def test_one_bad_bulk_item_refuses_the_whole_request_naming_it(client, tokens, body, message):
    response = post(client, "rentguy", body, **AUTH)

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert_nothing_stored()

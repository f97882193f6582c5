"""The application as `make run` serves it: gunicorn, with the in-process queue inside it."""

from __future__ import annotations

import json
import urllib.request

import pytest

from integrations.models import Job, Status
from tests.conftest import TOKENS, gunicorn, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web(managed_env, upstream, tmp_path):
    with gunicorn(managed_env, tmp_path / "gunicorn.log") as url:
        yield url


def test_a_job_posted_to_the_web_process_is_delivered_by_its_in_process_worker(web, upstream, managed_env):
    managed_env.set("QUEUE_REDIS_ENABLED", "false")
    request = urllib.request.Request(
        web + "/integrations/sevensa/jobs",
        data=json.dumps({"payload": {"form": "offerte", "guests": 80}, "idempotency_key": "web-1"}).encode(),
        headers={
            "Authorization": f"Bearer {TOKENS['INTEGRATIONS_API_TOKEN']}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        accepted = json.load(response)

    (delivered,) = upstream.wait_for(1)

    assert delivered.json() == {"form": "offerte", "guests": 80}
    assert delivered.headers["Idempotency-Key"] == "web-1"
    wait_until(lambda: Job.objects.get(pk=accepted["id"]).status == Status.DONE)

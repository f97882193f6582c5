"""The application as `make run` serves it: gunicorn, with the in-process queue inside it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from integrations.models import Job, Status
from tests.conftest import ROOT, TOKENS, database_url, python_env, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web(managed_env, upstream, tmp_path):
    """gunicorn on a free loopback port, stopped by its process group."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = python_env(
        DJANGO_SETTINGS_MODULE="mrdj.settings",
        MANAGED_ENV_PATH=managed_env.path,
        DATABASE_URL=database_url(),
    )
    env.pop("QUEUE_REDIS_ENABLED", None)
    with open(tmp_path / "gunicorn.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "mrdj.wsgi", "--bind", f"127.0.0.1:{port}", "--threads", "4"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(lambda: _answers(port), timeout=60, message="gunicorn did not start")
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


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

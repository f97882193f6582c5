from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_it_answers_200_when_the_database_answers(client, managed_env, monkeypatch):
    monkeypatch.delenv("QUEUE_REDIS_ENABLED", raising=False)
    managed_env.set("QUEUE_REDIS_ENABLED", "false")

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["checks"]["database"]["ok"] is True
    assert "redis" not in response.json()["checks"]  # the in-process queue needs no Redis
    assert "no-cache" in response["Cache-Control"]


def test_it_checks_redis_when_the_queue_runs_over_it(client, managed_env, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    managed_env.set("QUEUE_REDIS_ENABLED", "true")

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == {"ok": True, "detail": "ping ok"}


def test_it_answers_503_naming_redis_when_redis_is_down(client, managed_env, closed_port, monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://:s3cretpw@127.0.0.1:{closed_port}/0")
    managed_env.set("QUEUE_REDIS_ENABLED", "true")

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["failed"] == ["redis"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert "s3cretpw" not in response.content.decode()


def test_it_needs_no_login_and_refuses_changes(client, managed_env):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405

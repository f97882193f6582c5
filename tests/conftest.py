from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from mrdj.config import get_config
from mrdj.managed_env import ManagedEnv

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("MRDJ_REQUIRE_SERVICES") == "1"


def service_missing(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where the services must be there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (MRDJ_REQUIRE_SERVICES=1: CI must have it)")
    pytest.skip(reason)


@pytest.fixture
def redis_url(settings) -> str:
    url = settings.REDIS_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        service_missing(f"Redis at {url} is not reachable: {error}")
    finally:
        client.close()
    return url


@pytest.fixture
def managed_env(tmp_path, settings) -> ManagedEnv:
    """A fresh, empty managed.env that get_config() reads for this test."""
    settings.MANAGED_ENV_PATH = str(tmp_path / "managed.env")
    return get_config().store


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def python_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAG_")}
    env.update(overrides)
    return env


def run_python(code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter from the project root."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=python_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

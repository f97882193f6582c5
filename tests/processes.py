"""Processes the tests (and bench/chaos.py) start and stop: Celery workers, a Redis server of
their own. Each runs in its own process group and is stopped by that group, never by name."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout: float = 30.0, interval: float = 0.02, message: str = ""):
    """Poll condition until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        time.sleep(interval)


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class PrivateRedis:
    """A redis-server of its own on a free loopback port, keeping nothing on disk: stopping
    it touches no other Redis user, and each start is an emptied Redis."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_until(lambda: _pings(client), 20, message="private redis-server did not start")
        client.close()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class CeleryWorker:
    """A real `celery worker` in its own process group, stopped by that group."""

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int = 2, beat: bool = False):
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.beat = beat
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryWorker:
        name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mrdj",
                "worker",
                "--loglevel",
                "INFO",
                "--pool",
                "prefork",
            ]
            + ["--concurrency", str(self.concurrency), "--hostname", name]
            + ["--without-gossip", "--without-mingle", "--without-heartbeat"]
            + (["--beat"] if self.beat else []),
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: self._ready(offset), timeout=60, interval=0.1, message=f"worker not ready: {self.tail()}"
        )
        return self

    def _ready(self, offset: int) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"celery worker exited with {self.process.returncode}: {self.tail()}")
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return b" ready." in log.read()

    def tail(self, size: int = 3000) -> str:
        return self.log_path.read_bytes()[-size:].decode(errors="replace")

    def kill(self) -> None:
        """kill -9 the whole group: the main process and its pool children."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(20)
        self._log.close()

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from mrdj.config import get_config
from mrdj.managed_env import ManagedEnv
from tests.processes import ROOT, CeleryWorker, answers, wait_until

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


# --- Queues


TOKENS = {
    "INTEGRATIONS_API_TOKEN": "intake-token-for-tests",
    "METRICS_API_TOKEN": "metrics-token-for-tests",
    "OPS_API_TOKEN": "ops-token-for-tests",
    "RENTGUY_API_TOKEN": "rentguy-upstream-secret",
    "SEVENSA_API_TOKEN": "sevensa-upstream-secret",
}


@pytest.fixture(autouse=True)
def _fresh_broker_state():
    """A broker failure seen by one test must not hold back the next one."""
    from integrations import handoff

    handoff.broker_link.reset()
    yield
    handoff.broker_link.reset()


@pytest.fixture
def upstream(managed_env, request):
    """A local receiver standing in for both upstreams, with fast retries configured.

    A test's `config` marker adds its own values here, before any worker starts: a worker
    reads the queue settings once per round, so a value written while it runs may miss a
    job enqueued at the same moment.
    """
    from tests.receivers import Receiver

    marker = request.node.get_closest_marker("config")

    with Receiver() as receiver:
        managed_env.update(
            {
                **TOKENS,
                "RENTGUY_API_URL": receiver.url + "/rentguy/leads",
                "SEVENSA_SUBMIT_URL": receiver.url + "/sevensa/submit",
                "QUEUE_RETRY_BASE_MS": "1",
                "QUEUE_RETRY_MAX_MS": "5",
                "QUEUE_MAX_ATTEMPTS": "3",
                "QUEUE_HTTP_READ_TIMEOUT_MS": "2000",
                **(marker.kwargs if marker else {}),
            }
        )
        yield receiver


@pytest.fixture
def inprocess_worker(transactional_db, upstream):
    from integrations.fallback import InProcessWorker

    worker = InProcessWorker(poll_seconds=0.05, claims_every_seconds=0.2)
    worker.start()
    yield worker
    worker.stop()


def database_url() -> str:
    """The URL of the database the tests use, for worker subprocesses."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextlib.contextmanager
def gunicorn(managed_env, log_path: Path, workers: int = 1, **env: str):
    """`make run`'s server (gunicorn, mrdj.wsgi) on a free loopback port; stopped by its process group."""
    import signal

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = python_env(
        DJANGO_SETTINGS_MODULE="mrdj.settings",
        MANAGED_ENV_PATH=managed_env.path,
        DATABASE_URL=database_url(),
        **env,
    )
    environment.pop("QUEUE_REDIS_ENABLED", None)
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "mrdj.wsgi", "--bind", f"127.0.0.1:{port}", "--threads", "4"]
            + ["--workers", str(workers)],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(lambda: answers(port), timeout=60, message="gunicorn did not start")
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)


@pytest.fixture
def broker(redis_url, settings):
    """The Redis database the tests use as broker, emptied before and after."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def celery_workers(transactional_db, broker, upstream, managed_env, tmp_path, settings):
    """Start real workers on demand; every one is stopped at teardown."""
    started: list[CeleryWorker] = []
    env = python_env(
        DJANGO_SETTINGS_MODULE="mrdj.settings",
        MANAGED_ENV_PATH=managed_env.path,
        DATABASE_URL=database_url(),
        REDIS_URL=settings.CELERY_BROKER_URL,
    )
    env.pop("QUEUE_REDIS_ENABLED", None)

    def start(concurrency: int = 2, beat: bool = False) -> CeleryWorker:
        """beat runs Celery beat inside the worker, with the reconciler every 0.5 s."""
        worker_env = {**env, "QUEUE_RECONCILE_INTERVAL_MS": "500"} if beat else env
        worker = CeleryWorker(worker_env, tmp_path / "worker.log", concurrency, beat)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


WEBHOOK_SERVICES = ("slack", "discord", "teams", "json")


@pytest.fixture
def webhooks(transactional_db, managed_env):
    """One local receiver standing in for Slack, Discord, Teams and a generic endpoint, one path
    each (named with the URL prefixes), with fast delivery retries; senders drained at teardown."""
    from alerting import sender
    from tests.receivers import Receiver

    with Receiver() as receiver:
        managed_env.update(
            {
                **TOKENS,
                "ALERT_WEBHOOK_URLS": ",".join(f"{name}+{receiver.url}/{name}" for name in WEBHOOK_SERVICES),
                "ALERT_HTTP_READ_TIMEOUT_MS": "2000",
                "ALERT_DELIVERY_RETRY_BASE_MS": "1",
                "ALERT_DELIVERY_RETRY_MAX_MS": "5",
                "MRDJ_BASE_URL": "https://ops.misterdj.example",
            }
        )
        yield receiver
        sender.shutdown()


@pytest.fixture
def hooks(webhooks, managed_env):
    """The webhook receiver, with limits so low that a handful of real jobs crosses them."""
    managed_env.update(
        {
            "ALERT_QUEUE_WARNING_BACKLOG": "2",
            "ALERT_QUEUE_CRITICAL_BACKLOG": "4",
            "ALERT_QUEUE_DEAD_LETTER_WARNING": "1",
            "ALERT_RESOLVE_QUIET_MS": "600000",
        }
    )
    return webhooks


@pytest.fixture
def fake_jira(webhooks, managed_env):
    """FakeJira behind a loopback receiver, with ALERT_JIRA_* pointing at it and low queue limits."""
    from tests.fake_jira import FakeJira
    from tests.receivers import Receiver

    fake = FakeJira()
    with Receiver(respond=fake.respond) as receiver:
        managed_env.update(
            {
                "ALERT_JIRA_ENDPOINT": receiver.url,
                "ALERT_JIRA_USER": "ops-bot@misterdj.example",
                "ALERT_JIRA_TOKEN": "jira-api-token",
                "ALERT_ONCALL_PRIMARY": "@primary-oncall",
                "ALERT_QUEUE_WARNING_BACKLOG": "2",
                "ALERT_QUEUE_CRITICAL_BACKLOG": "4",
                "ALERT_JIRA_READ_TIMEOUT_MS": "2000",
            }
        )
        fake.receiver = receiver
        yield fake


# --- Browser tests

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "test-screenshots"
CHROMIUM_ARGS = [
    # Root in a container, and a machine with no way out: no sandbox, no background calls home.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright, headless; stopped at the end of the session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("playwright is not installed: make test installs requirements-dev.txt")
    if not Path(CHROMIUM).exists():
        service_missing(f"{CHROMIUM} is missing: apt-get install chromium (make test does, as root)")
    # Playwright's sync API keeps an asyncio loop in this thread, which Django's guard against
    # blocking calls from async code mistakes for async code; mrdj has none, so let it be.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


class BrowserPage:
    """One page with the JavaScript errors it logged and a screenshot helper."""

    def __init__(self, page, base_url: str, name: str):
        self.page = page
        self.base_url = base_url
        self.name = name
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))

    def goto(self, path: str):
        return self.page.goto(self.base_url + path)

    def screenshot(self, label: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser_page(chromium, live_server, request):
    marker = request.node.get_closest_marker("browser_timezone")
    options = {"timezone_id": marker.args[0]} if marker else {}
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield BrowserPage(page, live_server.url, request.node.name.replace("[", "-").rstrip("]"))
    context.close()


def pytest_terminal_summary(terminalreporter):
    if SCREENSHOTS.exists() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"browser test screenshots: {SCREENSHOTS}")

from __future__ import annotations

import subprocess
import sys

import pytest

from mrdj.config import Config, ConfigError, Source, parse_bool
from mrdj.declarations import REGISTRY, Kind
from tests.conftest import ROOT, python_env


def test_the_environment_wins_over_managed_env_which_wins_over_the_default(managed_env):
    managed_env.update({"IN_BOTH": "file", "IN_FILE": "file"})
    config = Config(managed_env, environ={"IN_BOTH": "environment"})

    assert config.lookup("IN_BOTH") == ("environment", Source.ENVIRONMENT)
    assert config.lookup("IN_FILE") == ("file", Source.MANAGED_ENV)
    assert config.lookup("NOWHERE") == (None, Source.DEFAULT)


@pytest.mark.parametrize("word", ["on", "ON", "true", "True", "1", "yes", "YES", " on "])
def test_parse_bool_accepts_the_words_for_on(word):
    assert parse_bool("X", word) is True


@pytest.mark.parametrize("word", ["off", "Off", "false", "FALSE", "0", "no", "No"])
def test_parse_bool_accepts_the_words_for_off(word):
    assert parse_bool("X", word) is False


@pytest.mark.parametrize("word", ["maybe", "", "2", "enabled", "y", "nope"])
def test_parse_bool_names_the_variable_and_value_it_refuses(word):
    with pytest.raises(ConfigError) as raised:
        parse_bool("QUEUE_REDIS_ENABLED", word)

    assert str(raised.value).startswith(f"QUEUE_REDIS_ENABLED={word!r} is not an on/off value")


def test_a_whole_number_refuses_text_and_values_below_its_minimum(managed_env):
    config = Config(managed_env, environ={})
    throttle = REGISTRY["ALERT_THROTTLE_MS"]

    assert throttle.parse("120000") == 120000
    with pytest.raises(ConfigError, match=r"ALERT_THROTTLE_MS='2m' is not a whole number"):
        throttle.parse("2m")
    with pytest.raises(ConfigError, match=r"QUEUE_LEASE_MS='10' must be at least 1000"):
        REGISTRY["QUEUE_LEASE_MS"].parse("10")
    assert config.duration("ALERT_THROTTLE_MS").total_seconds() == 120


def test_a_list_splits_on_commas_and_drops_blanks(managed_env):
    managed_env.set("ALERT_WEBHOOK_URLS", " http://127.0.0.1:1/a , ,http://127.0.0.1:2/b")
    config = Config(managed_env, environ={})

    assert config.value("ALERT_WEBHOOK_URLS") == ["http://127.0.0.1:1/a", "http://127.0.0.1:2/b"]


def test_every_declared_default_is_valid_and_every_variable_described():
    assert len(REGISTRY) >= 90
    for name, declared in REGISTRY.items():
        declared.parse(declared.default)
        if declared.example:
            declared.parse(declared.example)
        assert declared.description.endswith("."), name
        assert declared.group.title, name
        assert not (declared.secret and declared.kind is Kind.BOOL), name


def test_an_unusable_value_is_reported_not_obeyed_and_the_last_good_one_stands(managed_env, caplog):
    config = Config(managed_env, environ={})
    managed_env.set("QUEUE_MAX_ATTEMPTS", "4")
    assert config.value("QUEUE_MAX_ATTEMPTS") == 4

    managed_env.set("QUEUE_MAX_ATTEMPTS", "four")

    assert config.value("QUEUE_MAX_ATTEMPTS") == 4
    assert config.value("QUEUE_MAX_ATTEMPTS") == 4
    (problem,) = config.problems([REGISTRY["QUEUE_MAX_ATTEMPTS"]])
    assert (problem.name, problem.source, problem.line) == ("QUEUE_MAX_ATTEMPTS", Source.MANAGED_ENV, 1)
    assert "QUEUE_MAX_ATTEMPTS='four' is not a whole number" in str(problem)
    assert [r.getMessage() for r in caplog.records].count(
        "QUEUE_MAX_ATTEMPTS='four' is not a whole number; using the last good value until it is fixed"
    ) == 1, "logged once, not at every read"
    # A process that never saw a good value uses the default.
    assert Config(managed_env, environ={}).value("QUEUE_MAX_ATTEMPTS") == 10


def test_a_secret_never_appears_in_the_reason_it_is_refused(managed_env):
    managed_env.set("ALERT_JIRA_ENDPOINT", "not a url s3cr3t")
    managed_env.set("OTEL_EXPORTER_OTLP_HEADERS", "x")  # a list: anything parses
    config = Config(managed_env, environ={})

    (problem,) = config.problems([REGISTRY["ALERT_JIRA_ENDPOINT"]])
    assert "is not an http:// or https:// URL" in str(problem)
    secret = REGISTRY["ALERT_JIRA_TOKEN"]
    assert "s3cr3t" not in secret.shown("s3cr3t")
    managed_env.set("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://user:hunter2@collector.example")
    (problem,) = config.problems([REGISTRY["OTEL_EXPORTER_OTLP_ENDPOINT"]])
    assert "is not an http:// or https:// URL" in str(problem) and "hunter2" not in str(problem)


WATCHER = """
import sys, time
import django
django.setup()
from mrdj.flags import is_enabled
print("ready", is_enabled("FLAG_TELEMETRY"), flush=True)
started = time.monotonic()
while time.monotonic() - started < 30:
    if is_enabled("FLAG_TELEMETRY"):
        print("seen", flush=True)
        sys.exit(0)
    time.sleep(0.02)
sys.exit("never saw the change")
"""


def test_a_change_made_by_one_process_is_seen_by_another_without_restart(managed_env):
    managed_env.set("FLAG_TELEMETRY", "off")
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER],
        cwd=ROOT,
        env=python_env(DJANGO_SETTINGS_MODULE="mrdj.settings", MANAGED_ENV_PATH=managed_env.path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout.readline().strip() == "ready False"

        managed_env.set("FLAG_TELEMETRY", "on")

        out, err = watcher.communicate(timeout=30)
        assert watcher.returncode == 0, err
        assert out.strip() == "seen"
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()


def test_reads_are_cached_until_the_file_changes(managed_env):
    managed_env.set("KEY", "one")
    first = managed_env.snapshot()

    assert managed_env.snapshot() is first
    managed_env.set("KEY", "two")
    assert managed_env.snapshot() is not first
    assert managed_env.get("KEY") == "two"

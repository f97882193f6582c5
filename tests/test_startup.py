"""Start-up in a fresh process: an invalid value is named and degrades (only what cannot run
on a stand-in, such as the database URL, stops it); a secret key is generated once."""

from __future__ import annotations

import pytest

from mrdj.managed_env import ManagedEnv
from tests.conftest import run_python

SETUP = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"


def start(tmp_path, **env: str):
    env = {
        "DJANGO_SETTINGS_MODULE": "mrdj.settings",
        "MANAGED_ENV_PATH": str(tmp_path / "managed.env"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **env,
    }
    return run_python(SETUP, **env)


def manage(tmp_path, *args: str, **env: str):
    """manage.py in a fresh process, on mrdj's own settings and a managed.env of the test's."""
    argv = ["manage.py", *args]
    return run_python(
        f"import runpy, sys; sys.argv = {argv!r}; runpy.run_path('manage.py', run_name='__main__')",
        DJANGO_SETTINGS_MODULE="mrdj.settings",
        MANAGED_ENV_PATH=str(tmp_path / "managed.env"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **env,
    )


def test_a_secret_key_is_generated_into_managed_env_on_first_run_and_kept(tmp_path):
    first = start(tmp_path)
    second = start(tmp_path)

    assert first.returncode == 0, first.stderr
    key = ManagedEnv(tmp_path / "managed.env").get("SECRET_KEY")
    assert len(key) >= 50
    assert first.stdout.strip() == second.stdout.strip() == key


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not an on/off value"),
        ("QUEUE_REDIS_ENABLED", "perhaps", "QUEUE_REDIS_ENABLED='perhaps' is not an on/off value"),
        ("FLAG_TELEMETRY", "sometimes", "FLAG_TELEMETRY='sometimes' is not an on/off value"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD' is not one of"),
        ("MRDJ_BASE_URL", "ops.example", "MRDJ_BASE_URL='ops.example' is not an http:// or https:// URL"),
    ],
)
def test_an_invalid_value_does_not_stop_start_up_it_is_named_and_the_default_stands(
    tmp_path, name, value, message
):
    result = start(tmp_path, **{name: value})

    assert result.returncode == 0, result.stderr
    assert message in result.stderr


def test_an_invalid_value_in_managed_env_is_named_by_manage_py_check_which_still_runs(tmp_path):
    ManagedEnv(tmp_path / "managed.env").set("FLAG_RENTGUY_INTEGRATION", "kinda")

    result = manage(tmp_path, "check")

    assert result.returncode == 0, result.stderr
    assert (
        "FLAG_RENTGUY_INTEGRATION: (mrdj.W001) managed.env line 1: "
        "FLAG_RENTGUY_INTEGRATION='kinda' is not an on/off value"
    ) in result.stderr


def test_what_cannot_run_on_a_stand_in_stops_start_up(tmp_path):
    result = start(tmp_path, DATABASE_URL="bogus://db/x")

    assert result.returncode != 0
    assert "DATABASE_URL='bogus://db/x' has an unknown scheme" in result.stderr


def test_the_database_password_is_not_echoed_when_the_url_is_refused(tmp_path):
    result = start(tmp_path, DATABASE_URL="mongodb://ops:hunter2@127.0.0.1/mrdj")

    assert result.returncode != 0
    assert "unknown scheme 'mongodb'" in result.stderr
    assert "hunter2" not in result.stderr


def test_manage_py_prints_the_reason_without_a_traceback(tmp_path):
    result = manage(tmp_path, "check", REDIS_URL="http://127.0.0.1:6379")

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "mrdj cannot start: REDIS_URL must start with redis://, rediss:// or unix://"
    )


def test_a_real_deployment_without_a_secret_key_does_not_start_on_a_key_of_its_own(tmp_path):
    result = start(tmp_path, ALLOWED_HOSTS="ops.misterdj.nl")

    assert result.returncode != 0
    assert "SECRET_KEY is not set, and ALLOWED_HOSTS names a real host" in result.stderr
    assert ManagedEnv(tmp_path / "managed.env").get("SECRET_KEY") is None


def test_a_production_like_deployment_passes_check_deploy_cleanly(tmp_path, monkeypatch):
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE", raising=False)  # the browser tests set it
    shared_key = "k" * 20 + "-a-long-shared-secret-key-for-every-host"
    ManagedEnv(tmp_path / "managed.env").set("SECRET_KEY", shared_key)
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        MRDJ_BASE_URL="https://ops.misterdj.nl",
        ALLOWED_HOSTS="ops.misterdj.nl",
        TRUST_X_FORWARDED_PROTO="on",
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout

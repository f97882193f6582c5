from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from mrdj.config import ConfigError, Source
from mrdj.flags import FLAGS, FlagError, describe, describe_flags, is_enabled, set_flag
from mrdj.models import AuditEvent
from mrdj.signals import flag_changed

pytestmark = pytest.mark.django_db


def test_every_playbook_flag_is_known_with_a_description():
    assert set(FLAGS) == {
        "FLAG_PERSONALIZATION",
        "FLAG_RENTGUY_INTEGRATION",
        "FLAG_SEVENSA_INTEGRATION",
        "FLAG_TELEMETRY",
    }
    assert all(flag.description for flag in FLAGS.values())


def test_a_flag_without_a_value_has_its_default(managed_env):
    state = describe("FLAG_TELEMETRY")

    assert (state.enabled, state.source, state.changeable) == (False, Source.DEFAULT, True)
    assert is_enabled("FLAG_RENTGUY_INTEGRATION") is True


def test_set_flag_writes_managed_env_and_audits_who_what_and_when(managed_env):
    operator = User.objects.create_user("dj-ops", is_staff=True)

    state = set_flag("FLAG_TELEMETRY", "ON", actor=operator)

    assert (state.enabled, state.source) == (True, Source.MANAGED_ENV)
    assert managed_env.get("FLAG_TELEMETRY") == "on"
    assert is_enabled("FLAG_TELEMETRY") is True
    event = AuditEvent.objects.get()
    assert (event.user, event.actor, event.action, event.target) == (
        operator,
        "dj-ops",
        "flag.change",
        "FLAG_TELEMETRY",
    )
    assert event.before == {"value": "off", "source": "default"}
    assert event.after == {"value": "on", "source": "managed.env"}
    assert event.created_at is not None


def test_set_flag_announces_the_change(managed_env):
    received = []

    def receiver(sender, **kwargs):
        received.append((kwargs["name"], kwargs["old"], kwargs["new"], kwargs["actor"]))

    flag_changed.connect(receiver)
    try:
        set_flag("FLAG_PERSONALIZATION", "yes", actor="cli:ops")
    finally:
        flag_changed.disconnect(receiver)

    assert received == [("FLAG_PERSONALIZATION", False, True, "cli:ops")]


def test_setting_the_value_it_already_has_in_managed_env_changes_nothing(managed_env):
    set_flag("FLAG_TELEMETRY", "on", actor="cli:ops")

    set_flag("FLAG_TELEMETRY", "true", actor="cli:ops")

    assert AuditEvent.objects.count() == 1


def test_a_flag_forced_by_the_environment_cannot_be_changed(managed_env, monkeypatch):
    managed_env.set("FLAG_TELEMETRY", "off")
    before = Path(managed_env.path).read_bytes()
    monkeypatch.setenv("FLAG_TELEMETRY", "on")

    state = describe("FLAG_TELEMETRY")
    assert (state.enabled, state.source, state.forced, state.changeable) == (
        True,
        Source.ENVIRONMENT,
        True,
        False,
    )
    with pytest.raises(FlagError, match="unset FLAG_TELEMETRY"):
        set_flag("FLAG_TELEMETRY", "off", actor="cli:ops")

    assert Path(managed_env.path).read_bytes() == before
    assert not AuditEvent.objects.exists()


def test_an_invalid_value_is_refused_naming_flag_and_value(managed_env):
    with pytest.raises(ConfigError, match=r"FLAG_TELEMETRY='maybe' is not an on/off value"):
        set_flag("FLAG_TELEMETRY", "maybe", actor="cli:ops")

    assert managed_env.values() == {}
    assert not AuditEvent.objects.exists()


def test_an_unknown_flag_is_refused(managed_env):
    with pytest.raises(FlagError, match="'FLAG_DISCO' is not a feature flag"):
        set_flag("FLAG_DISCO", "on", actor="cli:ops")


def test_an_invalid_stored_value_is_reported_not_guessed(managed_env):
    managed_env.set("FLAG_SEVENSA_INTEGRATION", "sometimes")

    # Not obeyed, nor guessed: the default (or the last good value) stands, and it is reported.
    assert is_enabled("FLAG_SEVENSA_INTEGRATION") is True
    state = {s.name: s for s in describe_flags()}["FLAG_SEVENSA_INTEGRATION"]
    assert state.enabled is None
    assert "sometimes" in state.error


def test_the_flags_command_lists_value_and_source(managed_env, monkeypatch, capsys):
    managed_env.set("FLAG_PERSONALIZATION", "on")
    monkeypatch.setenv("FLAG_TELEMETRY", "off")

    call_command("flags")

    lines = {line.split()[0]: line.split()[1:3] for line in capsys.readouterr().out.splitlines()}
    assert lines["FLAG_PERSONALIZATION"] == ["on", "managed.env"]
    assert lines["FLAG_TELEMETRY"] == ["off", "forced"]
    assert lines["FLAG_RENTGUY_INTEGRATION"] == ["on", "default"]


def test_the_flags_command_sets_a_flag_and_audits_it(managed_env, capsys):
    call_command("flags", "set", "FLAG_TELEMETRY", "on")

    assert managed_env.get("FLAG_TELEMETRY") == "on"
    assert "FLAG_TELEMETRY is now on" in capsys.readouterr().out
    assert AuditEvent.objects.get().actor.startswith("cli:")


def test_the_flags_command_refuses_a_forced_flag_naming_the_variable(managed_env, monkeypatch):
    monkeypatch.setenv("FLAG_TELEMETRY", "off")

    with pytest.raises(CommandError, match="unset FLAG_TELEMETRY"):
        call_command("flags", "set", "FLAG_TELEMETRY", "on")

    assert managed_env.values() == {}


def test_the_flags_command_refuses_an_invalid_value(managed_env):
    with pytest.raises(CommandError, match=r"FLAG_TELEMETRY='perhaps'"):
        call_command("flags", "set", "FLAG_TELEMETRY", "perhaps")

    assert managed_env.values() == {}


def test_fifty_people_switching_a_flag_at_once_leave_one_audit_record(managed_env, transactional_db):
    import threading

    from django.db import connections

    from mrdj.flags import set_flag
    from mrdj.models import AuditEvent

    managed_env.set("FLAG_PERSONALIZATION", "off")
    start = threading.Barrier(50)

    def toggle(n: int) -> None:
        try:
            start.wait(10)
            set_flag("FLAG_PERSONALIZATION", "on", actor=f"ops-{n}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=toggle, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    (event,) = AuditEvent.objects.filter(action="flag.change")
    assert (event.before["value"], event.after["value"]) == ("off", "on")
    assert managed_env.get("FLAG_PERSONALIZATION") == "on"


def test_a_flag_broken_by_hand_degrades_the_queue_to_its_default_and_is_named_everywhere(
    client, managed_env, db
):
    from dashboard.page_data import configuration_check, queue_cards
    from tests.conftest import TOKENS

    managed_env.update({**TOKENS, "FLAG_RENTGUY_INTEGRATION": "maybe"})

    accepted = client.post(
        "/integrations/rentguy/jobs",
        {"payload": {"lead": 1}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKENS['INTEGRATIONS_API_TOKEN']}",
    )
    assert accepted.status_code == 202  # the flag's default (on) stands
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["degraded"] == [
        "FLAG_RENTGUY_INTEGRATION: managed.env line 6: FLAG_RENTGUY_INTEGRATION='maybe' is not an on/off "
        "value: use on/off, true/false, 1/0 or yes/no (the last good value stands until fixed)"
    ]
    check = configuration_check()
    assert not check.ok and "FLAG_RENTGUY_INTEGRATION" in check.detail
    card = next(c for c in queue_cards()["queues"] if c["queue"] == "rentguy")
    assert card["enabled_text"] == (
        "FLAG_RENTGUY_INTEGRATION invalid (enabled on its last good value): see Configuration"
    )

    call_command("flags", "set", "FLAG_RENTGUY_INTEGRATION", "on")  # the documented fix still runs
    assert client.get("/healthz").json()["status"] == "ok"

"""managed.env.example documents every variable the playbook names, with valid defaults."""

from __future__ import annotations

import re

import pytest

from mrdj.config import Config
from mrdj.flags import FLAGS, describe_flags
from mrdj.managed_env import ManagedEnv
from tests.conftest import ROOT

PLAYBOOK = ROOT.parent / "shared" / "playbook-nl.md"


def uncommented_example(tmp_path) -> ManagedEnv:
    """The example with every '# KEY=value' line switched on."""
    text = (ROOT / "managed.env.example").read_text()
    path = tmp_path / "managed.env"
    path.write_text(re.sub(r"(?m)^# ([A-Z][A-Z0-9_]*=)", r"\1", text))
    return ManagedEnv(path)


def test_every_line_of_the_example_parses(tmp_path):
    store = uncommented_example(tmp_path)

    assert store.snapshot().problems == ()
    assert set(FLAGS) <= set(store.values())


def test_the_example_shows_each_flag_with_its_real_default(tmp_path):
    config = Config(uncommented_example(tmp_path), environ={})

    for state in describe_flags(config):
        assert state.enabled == FLAGS[state.name].default, state.name


def test_the_example_documents_every_variable_of_playbook_sections_0_to_6(tmp_path):
    if not PLAYBOOK.exists():
        pytest.skip(f"{PLAYBOOK} is not beside this checkout")
    sections = PLAYBOOK.read_text().split("## 7.")[0]
    named = set(re.findall(r"`\$?([A-Z][A-Z0-9]*_[A-Z0-9_]+)", sections))
    assert len(named) >= 15

    documented = set(uncommented_example(tmp_path).values())

    assert named - documented == set()


def test_the_example_documents_every_alert_incident_and_personalization_variable_the_code_reads(tmp_path):
    apps = ("alerting", "incidents", "personalization")
    code = "\n".join(path.read_text() for app in apps for path in (ROOT / app).rglob("*.py"))
    read = set(re.findall(r'"((?:ALERT|INCIDENT|PERSONALIZATION)_[A-Z0-9_]+)"', code))
    assert len(read) >= 41

    assert read - set(uncommented_example(tmp_path).values()) == set()


def test_the_example_alert_settings_are_valid(tmp_path, settings):
    from django.core import checks

    settings.MANAGED_ENV_PATH = str(uncommented_example(tmp_path).path)
    errors = [e for e in checks.run_checks() if e.id.startswith(("alerting.", "incidents."))]

    assert errors == []


def test_the_example_is_written_from_the_registry_and_up_to_date():
    from mrdj.declarations import REGISTRY
    from mrdj.env_example import example_text

    text = (ROOT / "managed.env.example").read_text()

    assert text == example_text(), "run: python manage.py config example > managed.env.example"
    shown = set(re.findall(r"(?m)^# ([A-Z][A-Z0-9_]*)=", text))
    assert shown == set(REGISTRY)


def test_the_table_in_docs_configuration_is_written_from_the_registry_and_up_to_date():
    from mrdj.env_example import DOCS_END, DOCS_START, markdown_table

    text = (ROOT / "docs" / "configuration.md").read_text()
    start, end = text.index(DOCS_START), text.index(DOCS_END) + len(DOCS_END) + 1

    assert text[start:end] == markdown_table(), (
        "run: python manage.py config table, into docs/configuration.md"
    )

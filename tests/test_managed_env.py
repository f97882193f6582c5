from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import environ
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrdj.managed_env import ManagedEnv, ManagedEnvError, parse
from tests.conftest import ROOT, python_env

EXISTING = """\
# Mister DJ runtime configuration
FLAG_TELEMETRY=off

# Unknown to mrdj, kept as it is
SOMEONE_ELSES_KEY='left alone'
export EXPORTED="yes"
this line is not an assignment
lower_key=kept
FLAG_TELEMETRY=on
"""


def read_with_django_environ(path) -> dict[str, str]:
    """What the settings' parser, django-environ's Env.read_env, makes of the file."""

    class Capture(environ.Env):
        ENVIRON: dict[str, str] = {}

    Capture.read_env(str(path), overwrite=True)
    return Capture.ENVIRON


@pytest.fixture
def store(tmp_path) -> ManagedEnv:
    return ManagedEnv(tmp_path / "managed.env")


TRICKY_VALUES = [
    "plain",
    "",
    "with # hash",
    "#starts-with-hash",
    "it's",
    'say "hi"',
    "'single quoted'",
    '"double quoted"',
    "'\"mixed\"'",
    "back\\slash",
    "ends with backslash\\",
    "\\n is not a newline",
    "\\\\double",
    "a=b=c",
    "  spaces around  ",
    "naïve café \u2013 🎧 DJ",
    "$NOT_A_REFERENCE",
    "https://hooks.slack.example/T0/B0/xyz?a=1&b=2",
]


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_it_writes_values_django_environ_reads_back_unchanged(store, value):
    store.set("TRICKY", value)

    assert read_with_django_environ(store.path)["TRICKY"] == value
    assert ManagedEnv(store.path).get("TRICKY") == value


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Zl", "Zp", "Cs"))))
def test_it_round_trips_any_value_without_control_characters(tmp_path_factory, value):
    store = ManagedEnv(tmp_path_factory.mktemp("prop") / "managed.env")
    store.set("VALUE", value)

    assert read_with_django_environ(store.path)["VALUE"] == value


def test_it_keeps_comments_order_unknown_keys_and_unparseable_lines(store):
    Path(store.path).write_text(EXISTING)

    store.update({"FLAG_TELEMETRY": "off", "NEW_KEY": "new", "EXPORTED": "changed"})

    lines = Path(store.path).read_text().splitlines()
    assert lines == [
        "# Mister DJ runtime configuration",
        "FLAG_TELEMETRY=off",
        "",
        "# Unknown to mrdj, kept as it is",
        "SOMEONE_ELSES_KEY='left alone'",
        'export EXPORTED="changed"',
        "this line is not an assignment",
        "lower_key=kept",
        'FLAG_TELEMETRY="off"',
        'NEW_KEY="new"',
    ]
    assert read_with_django_environ(store.path)["SOMEONE_ELSES_KEY"] == "left alone"


def test_it_reports_unparseable_lines_with_their_numbers(store):
    Path(store.path).write_text(EXISTING)

    problems = store.snapshot().problems

    assert [(p.line, p.text) for p in problems] == [
        (7, "this line is not an assignment"),
        (8, "lower_key=kept"),
    ]
    assert "line 7" in str(problems[0])


def test_it_reads_the_last_assignment_of_a_key_like_django_environ(store):
    Path(store.path).write_text(EXISTING)

    assert store.get("FLAG_TELEMETRY") == "on"
    assert "lower_key" not in store.values()


def test_it_removes_a_key_when_given_none(store):
    store.update({"A": "1", "B": "2"})

    previous = store.update({"A": None})

    assert previous == {"A": "1"}
    assert Path(store.path).read_text() == 'B="2"\n'


@pytest.mark.parametrize(
    "value",
    [
        "two\nlines",
        "carriage\rreturn",
        "nul\x00byte",
        "escape\x1b[31m",
        "tab\tbed",
        "next\x85line",
        "sep\u2028ar",
    ],
)
def test_it_refuses_control_characters_and_leaves_the_file_unchanged(store, value):
    store.set("SAFE", "before")
    before = Path(store.path).read_bytes()

    with pytest.raises(ManagedEnvError, match="INJECTED: the value holds a control character"):
        store.update({"OTHER": "fine", "INJECTED": value})

    assert Path(store.path).read_bytes() == before


@pytest.mark.parametrize("key", ["lower", "1ABC", "_LEADING", "A-B", "A B", "A=B", "A\nB", "", "ÄBC"])
def test_it_refuses_bad_keys_and_leaves_the_file_unchanged(store, key):
    store.set("SAFE", "before")
    before = Path(store.path).read_bytes()

    with pytest.raises(ManagedEnvError, match="is not a valid key"):
        store.set(key, "x")

    assert Path(store.path).read_bytes() == before


def test_it_creates_the_file_readable_by_its_owner_only(store):
    store.set("SECRET_KEY", "s3cret")

    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_setdefault_keeps_an_existing_value(store):
    assert store.setdefault("SECRET_KEY", "first") == "first"
    assert store.setdefault("SECRET_KEY", "second") == "first"
    assert store.get("SECRET_KEY") == "first"


def test_a_missing_file_reads_as_empty(store):
    assert store.values() == {}
    assert store.snapshot().problems == ()


WRITER = """
import sys
from mrdj.managed_env import ManagedEnv
store = ManagedEnv(sys.argv[1])
prefix = sys.argv[2]
print("ready", flush=True)
sys.stdin.readline()
for i in range(200):
    store.set(f"{prefix}_{i}", str(i))
"""


def test_two_processes_writing_at_once_lose_no_update(store):
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, store.path, prefix],
            cwd=ROOT,
            env=python_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for prefix in ("ALPHA", "BRAVO")
    ]
    try:
        for writer in writers:  # both imported and waiting: start them together
            assert writer.stdout.readline().strip() == "ready"
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        for writer in writers:
            assert writer.wait(timeout=120) == 0
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()

    values = read_with_django_environ(store.path)
    expected = {f"{prefix}_{i}": str(i) for prefix in ("ALPHA", "BRAVO") for i in range(200)}
    assert values == expected
    leftovers = [name for name in os.listdir(os.path.dirname(store.path)) if name.endswith(".tmp")]
    assert leftovers == []


def test_parse_ignores_blank_lines_and_comments():
    snapshot = parse("\n   \n# comment\n  # indented comment\nKEY=value\n")

    assert snapshot.values == {"KEY": "value"}
    assert snapshot.problems == ()

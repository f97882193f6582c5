"""The managed.env store: runtime configuration that ops edit from the dashboard.

Values are read with django-environ's own parser, so the settings see exactly
what this module wrote. Writes rewrite only the lines they change, keep
comments, order, unknown keys and lines nobody can parse, and land atomically
under a file lock so that two processes never lose each other's change.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import environ

KEY_PATTERN = re.compile(r"[A-Z][A-Z0-9_]*\Z")
# The line grammar of django-environ's Env.read_env, so both agree on what a line is.
_ASSIGNMENT = re.compile(r"\A(?:export )?([A-Za-z_0-9]+)=(.*)\Z")
# str.splitlines() breaks on these too, so a value holding one would become two lines.
_LINE_BREAKING_CATEGORIES = {"Cc", "Zl", "Zp"}


class ManagedEnvError(ValueError):
    """A key or value that cannot be stored safely; nothing was written."""


class Conflict(ManagedEnvError):
    """Someone changed these keys since they were read; nothing was written."""

    def __init__(self, changed: dict[str, tuple[str | None, str | None]]):
        self.changed = changed  # key: (what the writer saw, what the file holds now)
        super().__init__(f"changed meanwhile: {', '.join(changed)}")


@dataclass(frozen=True)
class Problem:
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}: {self.text!r}"


@dataclass(frozen=True)
class Snapshot:
    values: dict[str, str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


def validate_key(key: str) -> None:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ManagedEnvError(
            f"{key!r} is not a valid key: use capital letters, digits and _, starting with a letter"
        )


def validate_value(key: str, value: str) -> None:
    if not isinstance(value, str):
        raise ManagedEnvError(f"{key}: the value must be text, not {type(value).__name__}")
    for position, char in enumerate(value):
        if unicodedata.category(char) in _LINE_BREAKING_CATEGORIES:
            raise ManagedEnvError(
                f"{key}: the value holds a control character {char!r} at position {position}; "
                "newlines, NUL and other control characters are not allowed"
            )


def quote(value: str) -> str:
    """Double-quote a value so that django-environ reads it back unchanged."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_values(text: str) -> dict[str, str]:
    """The values exactly as django-environ's parser reads them (last one wins)."""

    class _Capture(environ.Env):
        ENVIRON: dict[str, str] = {}

    # Only assignment lines go in: django-environ would log the others, secrets and all.
    assignments = "\n".join(line for line in text.splitlines() if _ASSIGNMENT.match(line))
    _Capture.read_env(io.StringIO(assignments), overwrite=True)
    return dict(_Capture.ENVIRON)


def parse(text: str) -> Snapshot:
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.match(line)
        if not match:
            problems.append(Problem(number, line, "not a KEY=value line, kept as it is"))
        elif not KEY_PATTERN.match(match.group(1)):
            problems.append(
                Problem(number, line, "key is not of the form [A-Z][A-Z0-9_]*, kept but not used")
            )
    values = {k: v for k, v in parse_values(text).items() if KEY_PATTERN.match(k)}
    return Snapshot(values=values, problems=tuple(problems))


def _line_key(line: str) -> str | None:
    match = _ASSIGNMENT.match(line)
    return match.group(1) if match else None


def apply_changes(text: str, changes: Mapping[str, str | None]) -> str:
    """Rewrite the lines of the changed keys; append new keys; None removes a key."""
    lines = text.splitlines()
    for key, value in changes.items():
        positions = [i for i, line in enumerate(lines) if _line_key(line) == key]
        if value is None:
            lines = [line for i, line in enumerate(lines) if i not in positions]
            continue
        assignment = f"{key}={quote(value)}"
        if positions:
            # The last assignment is the one django-environ keeps.
            last = positions[-1]
            prefix = "export " if lines[last].startswith("export ") else ""
            lines[last] = prefix + assignment
        else:
            lines.append(assignment)
    return "\n".join(lines) + "\n" if lines else ""


class ManagedEnv:
    """One managed.env file. Reads are cached until the file changes on disk."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.path.realpath(os.fspath(path))
        # (signature, contents) in one attribute: threads share this object, and two separate
        # attributes could pair an older file's contents with a newer file's signature.
        self._cached: tuple[tuple[int, ...] | None, Snapshot] = (None, Snapshot())

    def _signature(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _read_text(self) -> str:
        try:
            with open(self.path, encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def snapshot(self) -> Snapshot:
        """The current contents; re-parsed only when the file's stat changed."""
        signature = self._signature()
        cached_signature, cached = self._cached
        if signature == cached_signature:
            return cached
        current = parse(self._read_text()) if signature else Snapshot()
        self._cached = (signature, current)
        return current

    def line_of(self, key: str) -> int | None:
        """The line of key's assignment that counts (the last), for messages."""
        found = None
        for number, line in enumerate(self._read_text().splitlines(), start=1):
            if _line_key(line) == key:
                found = number
        return found

    def values(self) -> dict[str, str]:
        return self.snapshot().values

    def get(self, key: str) -> str | None:
        return self.values().get(key)

    def update(
        self, changes: Mapping[str, str | None], expected: Mapping[str, str | None] | None = None
    ) -> dict[str, str | None]:
        """Write several keys in one atomic step; returns their previous values.

        expected: what the writer saw of each key (None: unset); when the file now holds
        something else for any of them, Conflict names them and nothing is written.
        """
        for key, value in changes.items():
            validate_key(key)
            if value is not None:
                validate_value(key, value)
        with self._locked():
            text = self._read_text()
            before = parse_values(text)
            if expected is not None:
                changed = {k: (v, before.get(k)) for k, v in expected.items() if before.get(k) != v}
                if changed:
                    raise Conflict(changed)
            new_text = apply_changes(text, changes)
            after = parse_values(new_text)
            for key, value in changes.items():
                if after.get(key) != value:  # never write what would read back differently
                    raise ManagedEnvError(f"{key}: the value would not read back unchanged")
            self._write_atomically(new_text)
        return {key: before.get(key) for key in changes}

    def set(self, key: str, value: str) -> str | None:
        return self.update({key: value})[key]

    def setdefault(self, key: str, value: str) -> str:
        """Store value unless key already has one; returns the stored value."""
        validate_key(key)
        validate_value(key, value)
        with self._locked():
            current = parse_values(self._read_text()).get(key)
            if current is not None:
                return current
            self._write_atomically(apply_changes(self._read_text(), {key: value}))
        return value

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write_atomically(self, text: str) -> None:
        folder = os.path.dirname(self.path)
        try:
            mode = os.stat(self.path).st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600  # it holds secrets
        fd, temp_path = tempfile.mkstemp(dir=folder, prefix=".managed.env.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temp_path, mode)
            os.replace(temp_path, self.path)
        except BaseException:
            if os.path.exists(temp_path):
                os.unlink(temp_path)
            raise
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)
        self._cached = (None, Snapshot())  # this process sees its own write even within one clock tick

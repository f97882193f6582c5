"""Layered runtime configuration: the real environment, then managed.env, then defaults.

Settings read it once at start-up; code that must follow changes made from the
dashboard (flags, thresholds, webhook URLs) calls get_config() at the moment it
needs a value, and sees an edit of managed.env on its next call.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from mrdj import variables  # noqa: F401 (declares mrdj's own variables)
from mrdj.declarations import REGISTRY, ConfigError, Variable, parse_bool, variable
from mrdj.managed_env import ManagedEnv

__all__ = ["BASE_DIR", "Config", "ConfigError", "Source", "get_config", "managed_env_path", "parse_bool"]

BASE_DIR = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


class Source(enum.Enum):
    ENVIRONMENT = "environment"
    MANAGED_ENV = "managed.env"
    DEFAULT = "default"


@dataclass(frozen=True)
class Invalid:
    """A value that cannot be used: reported, not obeyed."""

    name: str
    source: Source
    reason: str
    line: int | None = None  # in managed.env

    def __str__(self) -> str:
        where = f"managed.env line {self.line}" if self.line else self.source.value
        return f"{where}: {self.reason}"


def managed_env_path() -> str:
    return os.environ.get("MANAGED_ENV_PATH") or str(BASE_DIR / "managed.env")


class Config:
    def __init__(self, store: ManagedEnv, environ: Mapping[str, str] = os.environ):
        self.store = store
        self.environ = environ
        self._last_good: dict[str, str] = {}  # the raw text last parsed well, per variable
        self._reported: dict[str, str] = {}  # the bad value last logged, per variable
        self._lock = threading.Lock()

    def lookup(self, name: str) -> tuple[str | None, Source]:
        if name in self.environ:
            return self.environ[name], Source.ENVIRONMENT
        value = self.store.get(name)
        if value is not None:
            return value, Source.MANAGED_ENV
        return None, Source.DEFAULT

    def value(self, name: str) -> Any:
        """The typed value of a declared variable. A value that cannot be used is not obeyed:
        the last good value this process read stands (the default before any), and
        problems() names it, so that a typo degrades what it concerns instead of stopping
        everything."""
        declared = variable(name)
        raw, _ = self.lookup(name)
        if raw is None:
            return declared.typed_default
        try:
            typed = declared.parse(raw)
        except ConfigError as error:
            with self._lock:
                seen = self._reported.get(name) != raw
                self._reported[name] = raw
            if seen:
                log.error("%s; using the last good value until it is fixed", error)
            good = self._last_good.get(name)
            return declared.typed_default if good is None else declared.parse(good)
        self._last_good[name] = raw
        return typed

    def strict(self, name: str) -> Any:
        """The typed value, or ConfigError: for what cannot run on a stand-in (the database URL)."""
        declared = variable(name)
        raw, _ = self.lookup(name)
        return declared.typed_default if raw is None else declared.parse(raw)

    def duration(self, name: str) -> timedelta:
        """A *_MS variable as a timedelta."""
        return timedelta(milliseconds=self.value(name))

    def problems(self, declared: list[Variable]) -> list[Invalid]:
        """Every declared variable whose current value cannot be used."""
        found = []
        for item in declared:
            raw, source = self.lookup(item.name)
            if raw is None:
                continue
            try:
                item.parse(raw)
            except ConfigError as error:
                line = self.store.line_of(item.name) if source is Source.MANAGED_ENV else None
                found.append(Invalid(item.name, source, str(error), line))
        return found


_configs: dict[str, Config] = {}


def get_config() -> Config:
    """The configuration of the managed.env named by the settings (cached per path)."""
    from django.conf import settings

    path = settings.MANAGED_ENV_PATH
    config = _configs.get(path)
    if config is None:
        config = _configs[path] = Config(ManagedEnv(path))
    return config


def invalid_values() -> list[Invalid]:
    """Every declared variable whose value, in the environment or managed.env, cannot be used."""
    return get_config().problems(list(REGISTRY.values()))


def describe_invalid() -> list[str]:
    """One line per invalid value, for /healthz, readiness and the dashboard's banner."""
    return [f"{item.name}: {item} (the last good value stands until fixed)" for item in invalid_values()]

"""Layered runtime configuration: the real environment, then managed.env, then defaults.

Settings read it once at start-up; code that must follow changes made from the
dashboard (flags, thresholds, webhook URLs) calls get_config() at the moment it
needs a value, and sees an edit of managed.env on its next call.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from mrdj.managed_env import ManagedEnv

BASE_DIR = Path(__file__).resolve().parent.parent
TRUE_WORDS = frozenset({"on", "true", "1", "yes"})
FALSE_WORDS = frozenset({"off", "false", "0", "no"})


class ConfigError(ImproperlyConfigured):
    """A variable whose value cannot be used; the message names both."""


class Source(enum.Enum):
    ENVIRONMENT = "environment"
    MANAGED_ENV = "managed.env"
    DEFAULT = "default"


def managed_env_path() -> str:
    return os.environ.get("MANAGED_ENV_PATH") or str(BASE_DIR / "managed.env")


def parse_bool(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={raw!r} is not an on/off value: use on/off, true/false, 1/0 or yes/no")


def parse_int(name: str, raw: str, minimum: int | None = 0) -> int:
    text = raw.strip()
    if not text.isascii():  # int() would also take other scripts' digits
        raise ConfigError(f"{name}={raw!r} is not a whole number")
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return number


def parse_number(name: str, raw: str, minimum: float = 0) -> float:
    """A decimal number such as 2 or 0.5 (ASCII digits only; no inf or nan)."""
    text = raw.strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is None or not (text.isascii() and text.replace(".", "", 1).isdigit()):
        raise ConfigError(f"{name}={raw!r} is not a number such as 2 or 0.5") from None
    if number < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}")
    return number


class Config:
    def __init__(self, store: ManagedEnv, environ: Mapping[str, str] = os.environ):
        self.store = store
        self.environ = environ

    def lookup(self, name: str) -> tuple[str | None, Source]:
        if name in self.environ:
            return self.environ[name], Source.ENVIRONMENT
        value = self.store.get(name)
        if value is not None:
            return value, Source.MANAGED_ENV
        return None, Source.DEFAULT

    def get_str(self, name: str, default: str = "") -> str:
        raw, _ = self.lookup(name)
        return default if raw is None else raw

    def get_bool(self, name: str, default: bool) -> bool:
        raw, _ = self.lookup(name)
        return default if raw is None else parse_bool(name, raw)

    def get_int(self, name: str, default: int, minimum: int | None = 0) -> int:
        raw, _ = self.lookup(name)
        return default if raw is None else parse_int(name, raw, minimum)

    def get_number(self, name: str, default: float, minimum: float = 0) -> float:
        raw, _ = self.lookup(name)
        return default if raw is None else parse_number(name, raw, minimum)

    def get_ms(self, name: str, default: int, minimum: int | None = 0) -> timedelta:
        """A duration given in milliseconds, as the playbook's *_MS variables are."""
        return timedelta(milliseconds=self.get_int(name, default, minimum))

    def get_list(self, name: str, default: tuple[str, ...] = ()) -> list[str]:
        raw, _ = self.lookup(name)
        if raw is None:
            return list(default)
        return [item.strip() for item in raw.split(",") if item.strip()]


_configs: dict[str, Config] = {}


def get_config() -> Config:
    """The configuration of the managed.env named by the settings (cached per path)."""
    from django.conf import settings

    path = settings.MANAGED_ENV_PATH
    config = _configs.get(path)
    if config is None:
        config = _configs[path] = Config(ManagedEnv(path))
    return config

"""What a configuration variable is: its name, type, default and meaning, and how a raw
value from the environment or managed.env becomes a typed one (or is refused, saying why).

The variables themselves are declared once, in mrdj/variables.py.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"on", "true", "1", "yes"})
FALSE_WORDS = frozenset({"off", "false", "0", "no"})


class ConfigError(ImproperlyConfigured):
    """A variable whose value cannot be used; the message names both."""


class Kind(enum.Enum):
    BOOL = "on/off"
    INT = "whole number"
    MS = "duration in ms"
    NUMBER = "number"
    URL = "URL"
    LIST = "comma-separated list"
    CHOICE = "choice"
    TEXT = "text"


@dataclass(frozen=True)
class Group:
    title: str
    playbook: str  # the playbook section(s) it serves


@dataclass(frozen=True)
class Variable:
    name: str
    kind: Kind
    default: str
    description: str
    group: Group
    minimum: float | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False
    restart: str = ""  # "" applies within seconds; else who reads it only at start-up
    example: str = ""  # shown in managed.env.example instead of the default
    check: Callable[[Any], object] | None = None  # raises ConfigError for a typed value it refuses

    def shown(self, raw: str) -> str:
        """The value as it may appear in a message (and on /healthz): never a secret's, nor a
        URL's credentials."""
        if self.secret or (self.kind is Kind.URL and "@" in raw):
            return "<secret>"
        return repr(raw)

    def parse(self, raw: str) -> Any:
        """The typed value of raw; ConfigError naming the variable and why."""
        parser = _PARSERS[self.kind]
        value = parser(self, raw)
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{self.name}={self.shown(raw)} must be at least {self.minimum:g}")
        if self.check is not None:
            self.check(value)
        return value

    @cached_property
    def _parsed_default(self) -> Any:
        return self.parse(self.default)

    @property
    def typed_default(self) -> Any:
        """Parsed once (value() returns it on every read of an unset variable); a list is a copy."""
        return _copy(self._parsed_default)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def parse_bool(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={raw!r} is not an on/off value: use on/off, true/false, 1/0 or yes/no")


def _bool(variable: Variable, raw: str) -> bool:
    return parse_bool(variable.name, raw)


def _int(variable: Variable, raw: str) -> int:
    text = raw.strip()
    if not (text.isascii() and text.lstrip("-").isdigit()):  # int() also takes other scripts' digits
        raise ConfigError(f"{variable.name}={variable.shown(raw)} is not a whole number")
    return int(text)


def _number(variable: Variable, raw: str) -> float:
    """A decimal number such as 2 or 0.5 (ASCII digits only; no inf or nan)."""
    text = raw.strip()
    if not (text.isascii() and text.replace(".", "", 1).isdigit()):
        raise ConfigError(f"{variable.name}={variable.shown(raw)} is not a number such as 2 or 0.5")
    return float(text)


def _url(variable: Variable, raw: str) -> str:
    text = raw.strip()
    if text and (urlsplit(text).scheme not in ("http", "https") or not urlsplit(text).netloc):
        raise ConfigError(f"{variable.name}={variable.shown(raw)} is not an http:// or https:// URL")
    return text


def _list(variable: Variable, raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _choice(variable: Variable, raw: str) -> str:
    text = raw.strip()
    if text.upper() not in variable.choices:
        raise ConfigError(
            f"{variable.name}={variable.shown(raw)} is not one of {', '.join(variable.choices)}"
        )
    return text.upper()


def _text(variable: Variable, raw: str) -> str:
    return raw


_PARSERS = {
    Kind.BOOL: _bool,
    Kind.INT: _int,
    Kind.MS: _int,
    Kind.NUMBER: _number,
    Kind.URL: _url,
    Kind.LIST: _list,
    Kind.CHOICE: _choice,
    Kind.TEXT: _text,
}


# --- The registry: every app declares its variables (mrdj's own in mrdj/variables.py,
# each app's in its *_variables.py, imported by its AppConfig.ready).
REGISTRY: dict[str, Variable] = {}


def declare(*variables: Variable) -> None:
    for variable in variables:
        if REGISTRY.get(variable.name, variable) != variable:
            raise ImproperlyConfigured(f"{variable.name} is declared twice")
        variable.parse(variable.default)  # a default that does not validate is a bug
        REGISTRY[variable.name] = variable


def variable(name: str) -> Variable:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ImproperlyConfigured(f"{name} is not a declared configuration variable") from None

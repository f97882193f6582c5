"""Changing configuration from mrdj (the dashboard's Configuration tab and `manage.py config`).

Every value is checked against its declaration before anything is written; a change is
written only if nobody changed those variables since the writer read them (the second of
two people editing at once is refused, naming what changed, and loses nothing); every
change is a version, with secrets kept only as set/unset and a short fingerprint, which
can be compared with any other and rolled back to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mrdj import audit
from mrdj.config import Config, Source, get_config
from mrdj.declarations import REGISTRY, ConfigError, Group, Variable
from mrdj.env_example import GROUP_ORDER
from mrdj.managed_env import Conflict, ManagedEnvError, validate_value
from mrdj.models import ConfigVersion


class Refused(ConfigError):
    """Nothing was written; problems names each variable and why."""

    def __init__(self, problems: Mapping[str, str]):
        self.problems = dict(problems)
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in self.problems.items()))


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:6]


def redact(variable: Variable, value: str | None) -> str | None:
    """What a record or page may show of a value: a secret only as set, with a fingerprint."""
    if value is None or not variable.secret:
        return value
    return f"set ({fingerprint(value)})" if value else "empty"


@dataclass(frozen=True)
class Entry:
    variable: Variable
    raw: str | None  # what the environment or managed.env holds; None: the default applies
    source: Source
    problem: str  # why the value cannot be used; "" when it can

    @property
    def forced(self) -> bool:
        return self.source is Source.ENVIRONMENT

    @property
    def flag(self) -> bool:
        return self.variable.name.startswith("FLAG_")

    @property
    def shown(self) -> str:
        if self.variable.secret:
            return redact(self.variable, self.raw) or "not set"
        return self.variable.default if self.raw is None else self.raw

    @property
    def form_value(self) -> str:
        """What an edit form starts from: never a secret."""
        return "" if self.variable.secret else self.shown


def entries(config: Config | None = None) -> list[Entry]:
    config = config or get_config()
    problems = {item.name: item.reason for item in config.problems(list(REGISTRY.values()))}
    return [
        Entry(variable, *config.lookup(variable.name), problems.get(variable.name, ""))
        for variable in REGISTRY.values()
    ]


def grouped(config: Config | None = None) -> list[tuple[Group, list[Entry]]]:
    every = entries(config)
    return [(group, [e for e in every if e.variable.group == group]) for group in GROUP_ORDER]


def _problems(changes: Mapping[str, str | None], config: Config) -> dict[str, str]:
    problems = {}
    for name, value in changes.items():
        variable = REGISTRY.get(name)
        if variable is None:
            problems[name] = "not a configuration variable of mrdj"
        elif name in config.environ:
            problems[name] = "set in the service's environment, which wins: change it there"
        elif name.startswith("FLAG_"):
            problems[name] = "a feature flag: change it on the Flags tab or with `manage.py flags set`"
        elif value is not None:
            try:
                validate_value(name, value)
                variable.parse(value)
            except (ConfigError, ManagedEnvError) as error:
                problems[name] = str(error)
    return problems


def change(
    changes: Mapping[str, str | None],
    expected: Mapping[str, str | None] | None,
    actor: Any,
    note: str = "",
    config: Config | None = None,
) -> ConfigVersion | None:
    """Write changes (None removes a variable from managed.env, so its default applies) if
    each is valid and, for expected, nobody changed it since; a new version, or None when
    nothing differs. Refused names every problem; nothing is written then."""
    config = config or get_config()
    problems = _problems(changes, config)
    if problems:
        raise Refused(problems)
    current = config.store.values()
    wanted = {name: value for name, value in changes.items() if current.get(name) != value}
    if not wanted:
        return None
    try:
        before = config.store.update(
            wanted, expected={n: v for n, v in (expected or {}).items() if n in wanted}
        )
    except Conflict as conflict:
        raise Refused(
            {
                name: f"changed meanwhile to {redact(REGISTRY[name], now)!r}; reload and try again"
                for name, (_, now) in conflict.changed.items()
            }
        ) from None
    except ManagedEnvError as error:
        raise Refused({name: str(error) for name in wanted}) from None
    record = {
        name: {"before": redact(REGISTRY[name], before[name]), "after": redact(REGISTRY[name], value)}
        for name, value in wanted.items()
    }
    version = ConfigVersion.objects.create(
        actor=audit.actor_fields(actor)["actor"],
        changes=record,
        values=_plain_values(config),
        note=note[:200],
    )
    audit.record(
        "config.change",
        actor=actor,
        target=", ".join(wanted),
        before={name: item["before"] for name, item in record.items()},
        after={**{name: item["after"] for name, item in record.items()}, "version": version.pk},
    )
    return version


def _plain_values(config: Config) -> dict[str, str]:
    """What managed.env holds of every declared variable that is not a secret."""
    values = config.store.values()
    return {
        name: values[name] for name, variable in REGISTRY.items() if name in values and not variable.secret
    }


def diff(older: ConfigVersion, newer: ConfigVersion) -> list[tuple[str, str | None, str | None]]:
    """Each non-secret variable that differs between two versions (None: not in managed.env),
    and each secret changed by a version in between (as its fingerprints)."""
    names = sorted(set(older.values) | set(newer.values))
    rows = [
        (n, older.values.get(n), newer.values.get(n))
        for n in names
        if older.values.get(n) != newer.values.get(n)
    ]
    low, high = sorted((older.pk, newer.pk))
    for version in ConfigVersion.objects.filter(pk__gt=low, pk__lte=high).order_by("pk"):
        for name, item in version.changes.items():
            if REGISTRY.get(name) and REGISTRY[name].secret:
                rows.append((name, item["before"], item["after"]))
    return rows


def rollback(version: ConfigVersion, actor: Any, config: Config | None = None) -> ConfigVersion | None:
    """managed.env's non-secret variables as they were after version (a new version itself).
    Secrets are not rolled back: mrdj never keeps their values."""
    config = config or get_config()
    current = _plain_values(config)
    names = (set(current) | set(version.values)) - set(config.environ)
    names = {name for name in names if not name.startswith("FLAG_")}
    changes = {
        name: version.values.get(name) for name in names if current.get(name) != version.values.get(name)
    }
    return change(
        changes, {name: current.get(name) for name in changes}, actor, f"rollback to version {version.pk}"
    )


def seen_token(raw: str | None) -> str:
    """What an edit form remembers of the value it showed, without holding it (a secret's
    included): compared at save time to refuse an edit made on top of someone else's."""
    return "unset" if raw is None else f"sha:{fingerprint(raw)}"


def change_seen(name: str, value: str | None, seen: str, actor: Any) -> ConfigVersion | None:
    """One variable from an edit form that showed the value whose seen_token is seen."""
    config = get_config()
    current = config.store.get(name)
    known = name in REGISTRY and name not in config.environ
    if known and seen_token(current) != seen:
        shown = redact(REGISTRY[name], current)
        raise Refused({name: f"changed meanwhile to {shown!r}; reload and try again"})
    return change({name: value}, {name: current}, actor)

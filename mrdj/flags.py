"""Feature flags: runtime switches stored in managed.env, forced by FLAG_* variables."""

from __future__ import annotations

from dataclasses import dataclass

from mrdj.config import Config, ConfigError, Source, get_config, parse_bool
from mrdj.declarations import REGISTRY


@dataclass(frozen=True)
class Flag:
    name: str
    default: bool
    description: str


FLAGS: dict[str, Flag] = {
    name: Flag(name, declared.typed_default, declared.description)
    for name, declared in REGISTRY.items()
    if name.startswith("FLAG_")
}


class FlagError(ConfigError):
    """A flag operation that was refused; nothing changed."""


@dataclass(frozen=True)
class FlagState:
    name: str
    description: str
    enabled: bool | None  # None when the stored value is invalid
    source: Source
    error: str = ""

    @property
    def forced(self) -> bool:
        return self.source is Source.ENVIRONMENT

    @property
    def changeable(self) -> bool:
        return not self.forced


def _flag(name: str) -> Flag:
    try:
        return FLAGS[name]
    except KeyError:
        raise FlagError(f"{name!r} is not a feature flag; known flags: {', '.join(FLAGS)}") from None


def is_enabled(name: str, config: Config | None = None) -> bool:
    """Whether a flag is on now. An invalid stored value raises ConfigError naming it."""
    flag = _flag(name)
    return (config or get_config()).value(flag.name)


def describe(name: str, config: Config | None = None) -> FlagState:
    flag = _flag(name)
    raw, source = (config or get_config()).lookup(name)
    if raw is None:
        return FlagState(flag.name, flag.description, flag.default, source)
    return _state(flag, raw, source)


def _state(flag: Flag, raw: str, source: Source) -> FlagState:
    try:
        return FlagState(flag.name, flag.description, parse_bool(flag.name, raw), source)
    except ConfigError as error:
        return FlagState(flag.name, flag.description, None, source, error=str(error))


def describe_flags(config: Config | None = None) -> list[FlagState]:
    config = config or get_config()
    return [describe(name, config) for name in FLAGS]


def set_flag(name: str, value: str | bool, actor, config: Config | None = None) -> FlagState:
    """Write a flag to managed.env, audit the change and announce it."""
    from mrdj import audit, signals

    config = config or get_config()
    before = describe(name, config)
    if before.forced:
        raise FlagError(
            f"{name} is forced by the environment variable {name}; "
            f"unset {name} in the service's environment to change it here"
        )
    enabled = value if isinstance(value, bool) else parse_bool(name, value)
    if before.source is Source.MANAGED_ENV and before.enabled == enabled:
        return before
    # What the file held is read under its lock, in the same step as the write: of two
    # people (or processes) making the same change at once, only the first made it.
    previous = config.store.set(name, "on" if enabled else "off")
    if previous is not None:
        before = _state(FLAGS[name], previous, Source.MANAGED_ENV)
        if before.enabled == enabled:
            return describe(name, config)
    elif before.source is not Source.DEFAULT:
        before = FlagState(name, before.description, FLAGS[name].default, Source.DEFAULT)
    after = describe(name, config)
    audit.record(
        "flag.change",
        actor=actor,
        target=name,
        before={"value": _word(before.enabled), "source": before.source.value},
        after={"value": _word(after.enabled), "source": after.source.value},
    )
    signals.flag_changed.send(sender=Flag, name=name, old=before.enabled, new=after.enabled, actor=actor)
    return after


def _word(enabled: bool | None) -> str:
    return {True: "on", False: "off", None: "invalid"}[enabled]


def flag_required(name: str):
    """A view behind a flag: 404 with a JSON error naming the flag while it is off.

    Read on every request, so switching the flag on in the dashboard opens the endpoint
    at once, in every process, without a restart.
    """
    from functools import wraps

    from django.http import JsonResponse

    _flag(name)

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                enabled = is_enabled(name)
            except ConfigError as error:
                return JsonResponse({"error": str(error)}, status=503)
            if not enabled:
                return JsonResponse(
                    {"error": f"this endpoint is switched off ({name} is off)", "flag": name}, status=404
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorator

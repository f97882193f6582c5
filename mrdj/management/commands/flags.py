from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError

from mrdj.config import ConfigError
from mrdj.flags import describe_flags, set_flag


class Command(BaseCommand):
    help = "List the feature flags, or change one: flags set FLAG_TELEMETRY on"

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action")
        actions.add_parser("list", help="Show every flag with its value and source (the default).")
        change = actions.add_parser("set", help="Write a flag to managed.env.")
        change.add_argument("name", help="e.g. FLAG_TELEMETRY")
        change.add_argument("value", help="on/off, true/false, 1/0 or yes/no")

    def handle(self, *args, action=None, **options):
        if action == "set":
            self._set(options["name"], options["value"])
        else:
            self._list()

    def _list(self) -> None:
        for state in describe_flags():
            value = state.error or ("on" if state.enabled else "off")
            source = f"forced (${state.name})" if state.forced else state.source.value
            self.stdout.write(f"{state.name:<26} {value:<4} {source:<32} {state.description}")

    def _set(self, name: str, value: str) -> None:
        try:
            state = set_flag(name, value, actor=f"cli:{getpass.getuser()}")
        except ConfigError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{state.name} is now {'on' if state.enabled else 'off'} (managed.env)")

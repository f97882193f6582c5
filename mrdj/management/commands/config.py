"""python manage.py config show|set|unset|history|diff|rollback|example|table: the configuration
from the command line, with the checks, versions and audit of the dashboard's tab."""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from mrdj import configuration
from mrdj.declarations import REGISTRY
from mrdj.env_example import example_text, markdown_table
from mrdj.models import ConfigVersion
from mrdj.times import shown


class Command(BaseCommand):
    help = "Show, change, compare and roll back configuration variables (managed.env)."

    def add_arguments(self, parser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        show = commands.add_parser("show", help="every variable (or one): value, source, problem")
        show.add_argument("name", nargs="?")
        change = commands.add_parser("set", help="set NAME to VALUE (VALUE '-': read it from standard input)")
        change.add_argument("name")
        change.add_argument("value")
        unset = commands.add_parser("unset", help="remove NAME from managed.env: its default applies")
        unset.add_argument("name")
        commands.add_parser("history", help="the versions, newest first")
        compare = commands.add_parser("diff", help="what differs between versions A and B")
        compare.add_argument("older", type=int)
        compare.add_argument("newer", type=int)
        back = commands.add_parser("rollback", help="managed.env as it was after VERSION (secrets excepted)")
        back.add_argument("version", type=int)
        commands.add_parser("example", help="print managed.env.example, written from the registry")
        commands.add_parser("table", help="print the table of variables in docs/configuration.md")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"_{action}")(**options)

    @property
    def actor(self) -> str:
        return f"cli:{getpass.getuser()}"

    def _example(self, **options) -> None:
        self.stdout.write(example_text(), ending="")

    def _table(self, **options) -> None:
        self.stdout.write(markdown_table(), ending="")

    def _show(self, name: str | None = None, **options) -> None:
        if name and name not in REGISTRY:
            raise CommandError(f"{name} is not a configuration variable of mrdj")
        for entry in configuration.entries():
            if name and entry.variable.name != name:
                continue
            source = "forced" if entry.forced else entry.source.value
            line = f"{entry.variable.name:<38} {entry.shown!s:<30} {source}"
            if entry.variable.restart:
                line += f"  (restart: {entry.variable.restart})"
            if entry.problem:
                line += f"  INVALID: {entry.problem}"
            self.stdout.write(line)

    def _change(self, changes: dict[str, str | None]) -> None:
        try:
            version = configuration.change(changes, None, self.actor)
        except configuration.Refused as refused:
            raise CommandError(str(refused)) from None
        if version is None:
            self.stdout.write("nothing changed: managed.env already holds that")
        else:
            self.stdout.write(f"version {version.pk}: {', '.join(version.changes)}")

    def _set(self, name: str, value: str, **options) -> None:
        if value == "-":  # a secret stays out of the shell's history and the process list
            value = sys.stdin.readline().rstrip("\n")
        self._change({name: value})

    def _unset(self, name: str, **options) -> None:
        self._change({name: None})

    def _history(self, **options) -> None:
        for version in ConfigVersion.objects.all()[:50]:
            changed = ", ".join(f"{n} {c['before']!r} -> {c['after']!r}" for n, c in version.changes.items())
            note = f" [{version.note}]" if version.note else ""
            when = shown(version.created_at)
            self.stdout.write(f"{version.pk:>4}  {when}  {version.actor}{note}: {changed}")

    def _version(self, number: int) -> ConfigVersion:
        version = ConfigVersion.objects.filter(pk=number).first()
        if version is None:
            raise CommandError(f"there is no version {number}; see `manage.py config history`")
        return version

    def _diff(self, older: int, newer: int, **options) -> None:
        rows = configuration.diff(self._version(older), self._version(newer))
        for name, before, after in rows:
            self.stdout.write(f"{name}: {before!r} -> {after!r}")
        if not rows:
            self.stdout.write(f"versions {older} and {newer} hold the same values")

    def _rollback(self, version: int, **options) -> None:
        try:
            made = configuration.rollback(self._version(version), self.actor)
        except configuration.Refused as refused:
            raise CommandError(str(refused)) from None
        if made is None:
            self.stdout.write(f"managed.env already holds version {version}'s values")
        else:
            self.stdout.write(
                f"version {made.pk}: rolled back to version {version} ({', '.join(made.changes)})"
            )

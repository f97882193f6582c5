"""python manage.py config example: managed.env.example from the registry of variables."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from mrdj.env_example import example_text


class Command(BaseCommand):
    help = "The configuration variables: `config example` prints managed.env.example."

    def add_arguments(self, parser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        commands.add_parser("example", help="print managed.env.example, written from the registry")

    def handle(self, *args, action: str, **options) -> None:
        if action == "example":
            self.stdout.write(example_text(), ending="")

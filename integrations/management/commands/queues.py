from __future__ import annotations

import getpass
import json

from django.core.management.base import BaseCommand, CommandError

from integrations import handoff, operations
from integrations.queues import QUEUES
from mrdj.config import ConfigError


class Command(BaseCommand):
    help = "Queue status and operator actions: queues status | flush <queue> | replay <queue> [--id N ...]"

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action")
        status = actions.add_parser("status", help="The figures of /metrics/queues (the default).")
        status.add_argument("--json", action="store_true", help="Print the JSON of /metrics/queues.")
        flush = actions.add_parser("flush", help="Retry now every job of the queue waiting to retry.")
        flush.add_argument("queue", choices=list(QUEUES))
        replay = actions.add_parser("replay", help="Return dead-letter jobs to the queue.")
        replay.add_argument("queue", choices=list(QUEUES))
        replay.add_argument("--id", dest="ids", type=int, action="append", help="Only this job (repeatable).")
        mode = actions.add_parser("mode", help="Show or switch where jobs run (QUEUE_REDIS_ENABLED).")
        mode.add_argument("mode", nargs="?", choices=["celery", "in-process"])
        mode.add_argument(
            "--force", action="store_true", help="switch to celery even while Redis does not answer"
        )
        actions.add_parser("reconcile", help="Release lost claims and hand on due jobs now.")
        actions.add_parser("recount", help="Rebuild the queue counters from the job table.")

    def handle(self, *args, action=None, **options):
        actor = f"cli:{getpass.getuser()}"
        if action == "flush":
            moved = operations.flush(QUEUES[options["queue"]], actor)
            self.stdout.write(f"{options['queue']}: {moved} job(s) flushed")
        elif action == "replay":
            ids = options["ids"]
            if ids is not None and any(i <= 0 for i in ids):
                raise CommandError("--id takes positive job ids")
            moved = operations.replay(QUEUES[options["queue"]], actor, ids)
            self.stdout.write(f"{options['queue']}: {moved} job(s) replayed")
        elif action == "mode":
            self._mode(options["mode"], actor, options["force"])
        elif action == "reconcile":
            self.stdout.write(json.dumps(operations.reconcile()))
        elif action == "recount":
            self.stdout.write(json.dumps(operations.recount()))
        else:
            self._status(options.get("json", False))

    def _mode(self, wanted: str | None, actor: str, force: bool = False) -> None:
        if wanted is not None:
            try:
                operations.switch_mode(wanted == "celery", actor, force)
            except ConfigError as error:
                raise CommandError(str(error)) from None
        self.stdout.write(f"jobs run: {handoff.mode()}")

    def _status(self, as_json: bool) -> None:
        figures = operations.queue_figures()
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        self.stdout.write(f"mode: {figures['queue_mode']}")
        columns = ("backlog", "active", "retry_age_ms", "dead_letter", "oldest_pending_age_ms", "enabled")
        self.stdout.write(f"{'queue':<10}" + "".join(f"{c:>23}" for c in columns))
        for name, row in figures["queues"].items():
            self.stdout.write(f"{name:<10}" + "".join(f"{row[c]!s:>23}" for c in columns))

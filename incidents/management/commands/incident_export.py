"""python manage.py incident_export <id>: the dossier on stdout, and into INCIDENT_DOSSIER_DIR."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from incidents import dossier
from incidents.models import Incident
from incidents.timing import Timing


class Command(BaseCommand):
    help = (
        "Print an incident's dossier (Markdown, or JSON); also write both to INCIDENT_DOSSIER_DIR when set."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("incident", help="the incident's number or reference (INC-20261127-3)")
        parser.add_argument("--format", choices=["markdown", "json"], default="markdown")

    def handle(self, *args, incident: str, format: str, **options) -> None:
        number = incident if incident.isdigit() else incident.rsplit("-", 1)[-1]
        found = Incident.objects.filter(pk=int(number)).first() if number.isdigit() else None
        if found is None or not (incident.isdigit() or found.reference == incident):
            raise CommandError(
                f"incident: no incident {incident!r} (give its number or its INC-... reference)"
            )
        data = dossier.as_data(found)
        self.stdout.write(dossier.as_json(data) if format == "json" else dossier.as_markdown(data), ending="")
        folder = Timing.read().dossier_dir
        if folder:
            try:
                written = dossier.write(found)
            except OSError as error:
                raise CommandError(f"INCIDENT_DOSSIER_DIR={folder}: cannot write there: {error}") from None
            for path in written:
                self.stderr.write(f"written: {path}")

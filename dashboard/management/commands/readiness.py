from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from dashboard import page_data


class Command(BaseCommand):
    help = "Playbook section 8, checked now: each check with pass or fail; exits 1 when one fails."

    def handle(self, *args, **options):
        checks = page_data.readiness()
        for check in checks:
            self.stdout.write(f"{'pass' if check.ok else 'FAIL':6} {check.name}: {check.detail}")
        for step in page_data.MANUAL_STEPS:
            self.stdout.write(f"{'manual':6} {step.name}: {step.detail}")
        failed = [check.name for check in checks if not check.ok]
        if failed:
            raise CommandError(f"not ready: {', '.join(failed)}", returncode=1)
        self.stdout.write("ready")

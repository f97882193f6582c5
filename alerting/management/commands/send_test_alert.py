from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError

from alerting import alert_actions
from alerting.models import Delivery
from mrdj.config import ConfigError


class Command(BaseCommand):
    help = (
        'Smoke test (playbook section 8): post {"type":"smoke","message":"alert-test"} to every '
        "ALERT_WEBHOOK_URLS target, in its service's format, and print each answer."
    )

    def handle(self, *args, **options):
        try:
            deliveries = alert_actions.send_test_alert(f"cli:{getpass.getuser()}")
        except ConfigError as error:
            raise CommandError(str(error)) from None
        if not deliveries:
            raise CommandError("ALERT_WEBHOOK_URLS is empty: there is nothing to test")
        failed = 0
        for delivery in deliveries:
            if delivery.status == Delivery.Status.SENT:
                self.stdout.write(
                    f"ok      {delivery.target}: {delivery.response_code} in {delivery.duration_ms} ms"
                )
            else:
                failed += 1
                self.stdout.write(f"FAILED  {delivery.target}: {delivery.error or delivery.status}")
        if failed:
            raise CommandError(f"{failed} of {len(deliveries)} webhook(s) did not take the test alert")

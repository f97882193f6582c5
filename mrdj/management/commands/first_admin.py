from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the first admin user from DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD, "
        "or say how to create one. Does nothing once a superuser exists."
    )

    def handle(self, *args, **options):
        users = get_user_model().objects
        if users.filter(is_superuser=True).exists():
            return
        if os.environ.get("DJANGO_SUPERUSER_USERNAME") and os.environ.get("DJANGO_SUPERUSER_PASSWORD"):
            email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
            call_command("createsuperuser", interactive=False, email=email, verbosity=0)
            name = os.environ["DJANGO_SUPERUSER_USERNAME"]
            self.stdout.write(f"Created the admin user {name!r}.")
            return
        self.stdout.write(
            "No admin user yet. Create one in another terminal with:\n"
            "    .venv/bin/python manage.py createsuperuser\n"
            "or set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD before `make run`."
        )

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrdj.settings")

application = get_wsgi_application()

from mrdj.signals import web_process_started  # noqa: E402 (needs the apps loaded)

web_process_started.send(sender=None)

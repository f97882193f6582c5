import os

import django
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrdj.settings")
django.setup(set_prefix=False)

from mrdj import telemetry  # noqa: E402 (needs the apps loaded)
from mrdj.signals import web_process_started  # noqa: E402

telemetry.bootstrap("web")  # before the handler loads the middleware: Django's spans need their own
application = WSGIHandler()
web_process_started.send(sender=None)

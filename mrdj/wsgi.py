import os

import django
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrdj.settings")
django.setup(set_prefix=False)

from mrdj import telemetry  # noqa: E402 (needs the apps loaded)
from mrdj.signals import web_process_started  # noqa: E402

telemetry.bootstrap("web")  # configures the server-span middleware listed in settings.MIDDLEWARE
application = WSGIHandler()
web_process_started.send(sender=None)

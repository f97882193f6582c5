import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrdj.settings")

app = Celery("mrdj")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""Signals through which what happens in mrdj reaches the apps above it."""

from django.dispatch import Signal

# name, old, new (bools, None for an invalid old value), actor
flag_changed = Signal()

# Sent by mrdj.wsgi once the web application is loaded (gunicorn worker, runserver).
web_process_started = Signal()

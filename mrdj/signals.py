"""Signals through which what happens in mrdj reaches the apps above it."""

from django.dispatch import Signal

# name, old, new (bools, None for an invalid old value), actor
flag_changed = Signal()

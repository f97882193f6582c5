"""What alerting tells the apps above it, without knowing who listens."""

from django.dispatch import Signal

# Sent after every evaluation, with now: the moment it judged (tests move it).
evaluated = Signal()

# Sent when someone becomes an alert's first responder, with alert, actor and now.
acknowledged = Signal()

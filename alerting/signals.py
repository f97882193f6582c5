"""What alerting tells the apps above it, without knowing who listens."""

from django.dispatch import Signal

# Sent after every evaluation of the figures, with now: the moment it judged (tests move it).
evaluated = Signal()

# Sent after every tick's upkeep (beat's, or the evaluator's while the queues run in-process), with now.
ticked = Signal()

# Sent when someone becomes an alert's first responder, with alert, actor and now.
acknowledged = Signal()

"""What the queues announce, so that alerting reacts at once instead of polling.

Each is sent after the transaction that caused it has committed.
"""

from django.dispatch import Signal

# queue, job_id, attempts, status_code, error
job_dead_lettered = Signal()
# queue, job_id, attempts: delivered after at least one failed try
job_recovered = Signal()
# queue: jobs were added to or taken from its backlog or dead-letter queue
backlog_changed = Signal()
# queue, event ("opened" or "closed"): the upstream's circuit breaker changed state
circuit_changed = Signal()

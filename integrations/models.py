from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import F

from integrations.queues import QUEUE_CHOICES
from mrdj.times import shown


class Status(models.TextChoices):
    PENDING = "pending", "pending"  # waiting for its first try (or replayed)
    RETRY = "retry", "waiting to retry"  # failed, waits until next_attempt_at
    ACTIVE = "active", "in flight"  # claimed by a worker
    DONE = "done", "delivered"
    DEAD = "dead", "dead-letter"  # waits for an operator's replay
    CANCELLED = "cancelled", "cancelled"  # an operator chose not to send it; kept, never tried again


WAITING = (Status.PENDING, Status.RETRY)
CANCELLABLE = (Status.PENDING, Status.RETRY, Status.DEAD)  # not in flight, not delivered


class JobQuerySet(models.QuerySet):
    def accepted_within(self, since: datetime | None, until: datetime | None) -> JobQuerySet:
        """Jobs intake accepted at or after since and before until (either may be open)."""
        jobs = self
        if since:
            jobs = jobs.filter(created_at__gte=since)
        if until:
            jobs = jobs.filter(created_at__lt=until)
        return jobs


class Job(models.Model):
    """One payload to deliver upstream. The database row is the truth; the broker only carries work."""

    queue = models.CharField("queue", max_length=32, choices=QUEUE_CHOICES)
    status = models.CharField("status", max_length=16, choices=Status.choices, default=Status.PENDING)
    payload = models.JSONField("payload", help_text="The JSON object POSTed to the upstream.")
    original_payload = models.JSONField(
        "original payload",
        null=True,
        blank=True,
        help_text="As intake accepted it, kept when an operator edits the payload.",
    )
    idempotency_key = models.CharField(
        "idempotency key",
        max_length=200,
        help_text="Sent upstream as Idempotency-Key; the client's, or generated at intake.",
    )
    attempts = models.PositiveIntegerField("attempts", default=0, help_text="Tries started so far.")
    created_at = models.DateTimeField("accepted at", help_text="When intake accepted the job.")
    next_attempt_at = models.DateTimeField("next try at", help_text="Not tried before this time.")
    trace_parent = models.CharField(
        "trace",
        max_length=64,
        blank=True,
        db_default="",
        help_text="W3C traceparent of the request that accepted it, when telemetry was on.",
    )
    claimed_at = models.DateTimeField("claimed at", null=True, blank=True)
    claim_token = models.CharField(
        "claim",
        max_length=32,
        blank=True,
        help_text="Identifies the try in flight, so a stale worker cannot finish it.",
    )
    finished_at = models.DateTimeField("finished at", null=True, blank=True)
    last_status_code = models.PositiveIntegerField("last HTTP status", null=True, blank=True)
    last_error = models.CharField("last error", max_length=500, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["queue", "idempotency_key"], name="job_unique_idempotency_key")
        ]
        indexes = [
            # Oldest waiting job per queue and status, for the metrics, without a scan.
            models.Index(fields=["queue", "status", "created_at"], name="job_queue_status_created"),
            # Due jobs of a queue in due order for the claim, and its in-flight jobs for the
            # lease check. Few indexes on purpose: every status change rewrites each of them.
            models.Index(fields=["queue", "status", "next_attempt_at"], name="job_queue_due"),
        ]
        permissions = [
            ("flush_job", "Can flush a queue (retry its waiting jobs now)"),
            ("replay_job", "Can replay dead-letter jobs"),
            ("cancel_job", "Can cancel jobs, and edit a job's payload to send it again"),
        ]

    def __str__(self) -> str:
        return f"{self.queue} job {self.pk} ({self.status})"


ANSWER_CHARS = 200


class Attempt(models.Model):
    """One try of a job: what the upstream answered, or why it could not."""

    STALE = "stale"  # the outcome of a try whose claim no longer held: its result was not applied

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempt_set", db_index=False)
    number = models.PositiveIntegerField("try")
    started_at = models.DateTimeField("started at")
    duration_ms = models.PositiveIntegerField("duration (ms)")
    status_code = models.PositiveIntegerField("HTTP status", null=True, blank=True)
    error = models.CharField("error", max_length=500, blank=True)
    answer = models.CharField(
        "answer",
        max_length=ANSWER_CHARS,
        blank=True,
        db_default="",
        help_text="The first characters of the upstream's answer body.",
    )
    outcome = models.CharField("outcome", max_length=16, help_text="done, retry, dead or stale")
    counted = models.BooleanField(
        "counted",
        default=True,
        db_default=True,
        help_text="Whether the try counted against the job's attempts: a try made while the "
        "upstream's circuit was open, or paused by its Retry-After, does not.",
    )

    class Meta:
        ordering = ["job_id", "number", "id"]
        indexes = [models.Index(fields=["job", "number"], name="attempt_job_number")]  # also serves the FK

    def __str__(self) -> str:
        return f"try {self.number} of job {self.job_id}: {self.outcome}"


class Circuit(models.TextChoices):
    CLOSED = "closed", "closed"  # jobs flow
    OPEN = "open", "open"  # the upstream is down: jobs wait, one probe per interval
    HALF_OPEN = "half_open", "half-open"  # a probe is in flight


class UpstreamState(models.Model):
    """Per queue: its circuit breaker, a pause the upstream asked for, the rate limiter's clock.

    Every claim and every finish of the queue locks this row, so all workers on all
    machines share one breaker and one set of limits.
    """

    queue = models.CharField("queue", max_length=32, unique=True, choices=QUEUE_CHOICES)
    circuit = models.CharField("circuit", max_length=16, choices=Circuit.choices, default=Circuit.CLOSED)
    failures = models.PositiveIntegerField(
        "consecutive failures", default=0, help_text="Tries in a row that found the upstream down."
    )
    opened_at = models.DateTimeField("open since", null=True, blank=True)
    probe_at = models.DateTimeField("next probe at", null=True, blank=True)
    probe_interval_ms = models.PositiveIntegerField(
        "probe interval (ms)", default=0, help_text="Doubles after each failed probe, up to the maximum."
    )
    paused_until = models.DateTimeField(
        "paused until", null=True, blank=True, help_text="Set by a 429 or 503 with Retry-After."
    )
    last_error = models.CharField("last error", max_length=500, blank=True)
    last_error_at = models.DateTimeField("last error at", null=True, blank=True)
    rate_next_at = models.DateTimeField(
        "next free rate slot", null=True, blank=True, help_text="Tries start no earlier than this."
    )
    last_claim_at = models.DateTimeField(
        "last try started",
        null=True,
        blank=True,
        help_text="When a worker last took jobs of the queue (to the second), for the stall detector.",
    )

    class Meta:
        verbose_name = "upstream state"

    def __str__(self) -> str:
        return f"{self.queue}: circuit {self.circuit}"


class QueueCounterManager(models.Manager):
    def adjust(self, queue: str, deltas: dict[str, int]) -> None:
        """Add deltas to the queue's counters, in the caller's transaction, in a fixed order."""
        for status in sorted(deltas):
            delta = deltas[status]
            if not delta:
                continue
            updated = self.filter(queue=queue, status=status).update(count=F("count") + delta)
            if not updated:
                self.bulk_create([QueueCounter(queue=queue, status=status, count=0)], ignore_conflicts=True)
                self.filter(queue=queue, status=status).update(count=F("count") + delta)

    def counts(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for queue, status, count in self.values_list("queue", "status", "count"):
            result.setdefault(queue, {})[status] = count
        return result


class QueueCounter(models.Model):
    """Jobs per queue and status, kept with every transition so metrics never count rows."""

    queue = models.CharField("queue", max_length=32)
    status = models.CharField("status", max_length=16)
    count = models.BigIntegerField("jobs", default=0)

    objects = QueueCounterManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["queue", "status"], name="queue_counter_unique")]

    def __str__(self) -> str:
        return f"{self.queue} {self.status}: {self.count}"


class QueueSample(models.Model):
    """A queue's figures at one moment, for the dashboard's charts: one row per minute for a
    day, one per ten minutes for a week (integrations.history writes and prunes them)."""

    queue = models.CharField("queue", max_length=32)
    resolution_s = models.PositiveIntegerField("resolution (s)", help_text="60 or 600")
    at = models.DateTimeField("at", help_text="Start of the period the sample covers.")
    backlog = models.PositiveIntegerField("backlog")
    retrying = models.PositiveIntegerField("waiting to retry")
    retry_age_ms = models.BigIntegerField("retry age (ms)")
    dead_letter = models.PositiveIntegerField("dead-letter")
    delivered = models.PositiveIntegerField("delivered in the period")
    failed = models.PositiveIntegerField("failed tries in the period")
    latency_p50_ms = models.BigIntegerField("delivery latency p50 (ms)", null=True, blank=True)
    latency_p95_ms = models.BigIntegerField("delivery latency p95 (ms)", null=True, blank=True)
    attempts_upto = models.BigIntegerField(
        "tries up to", help_text="The last try (Attempt id) the period counted: the next starts after it."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["queue", "resolution_s", "at"], name="queue_sample_unique")
        ]

    def __str__(self) -> str:
        return f"{self.queue} at {shown(self.at)} ({self.resolution_s} s)"

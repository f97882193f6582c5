from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integrations.queues import QUEUE_CHOICES
from mrdj.text import one_line_problem
from mrdj.times import shown

ALL_QUEUES = ""  # the queue of a default threshold row, a global alert or a silence of everything


class Severity(models.TextChoices):
    WARNING = "warning", "warning"
    CRITICAL = "critical", "critical"


SEVERITY_RANK = {None: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Kind(models.TextChoices):
    BACKLOG = "backlog", "backlog"
    RETRY_AGE = "retry_age", "retry age"
    DEAD_LETTER = "dead_letter", "dead-letter"
    TELEMETRY_SILENT = "telemetry_silent", "telemetry silent"
    BROKER_UNREACHABLE = "broker_unreachable", "broker unreachable"
    CIRCUIT_OPEN = "circuit_open", "upstream circuit open"
    STALLED = "stalled", "queue stalled"


# The threshold fields, each with the variable that gives its value when the default row leaves it empty.
THRESHOLD_VARIABLES = {
    "warning_backlog": "ALERT_QUEUE_WARNING_BACKLOG",
    "critical_backlog": "ALERT_QUEUE_CRITICAL_BACKLOG",
    "warning_retry_age_ms": "ALERT_QUEUE_WARNING_RETRY_AGE_MS",
    "critical_retry_age_ms": "ALERT_QUEUE_CRITICAL_RETRY_AGE_MS",
    "dead_letter_warning": "ALERT_QUEUE_DEAD_LETTER_WARNING",
}
THRESHOLD_PAIRS = (("warning_backlog", "critical_backlog"), ("warning_retry_age_ms", "critical_retry_age_ms"))


def _threshold_field(label: str, help_text: str) -> models.PositiveBigIntegerField:
    return models.PositiveBigIntegerField(
        label, null=True, blank=True, validators=[MinValueValidator(0)], help_text=help_text
    )


class Threshold(models.Model):
    """Limits per queue. An empty field inherits: a queue's row from the default row,
    the default row from its ALERT_QUEUE_* variable, so the playbook's variables keep working."""

    queue = models.CharField(
        "queue",
        max_length=32,
        blank=True,
        unique=True,
        choices=[(ALL_QUEUES, "default (every queue)")] + list(QUEUE_CHOICES),
        help_text="Leave empty for the default row, which every queue without its own row follows.",
    )
    warning_backlog = _threshold_field("warning backlog", "Jobs waiting (retries included) for warning.")
    critical_backlog = _threshold_field("critical backlog", "Jobs waiting (retries included) for critical.")
    warning_retry_age_ms = _threshold_field(
        "warning retry age (ms)", "Age of the oldest job waiting to retry, for warning."
    )
    critical_retry_age_ms = _threshold_field(
        "critical retry age (ms)", "Age of the oldest job waiting to retry, for critical."
    )
    dead_letter_warning = _threshold_field(
        "dead-letter warning", "Dead-letter jobs for warning; 0 switches the dead-letter alert off."
    )

    class Meta:
        ordering = ["queue"]
        verbose_name = "threshold"

    def __str__(self) -> str:
        return f"thresholds of {self.queue}" if self.queue else "default thresholds"


def _alert_key() -> str:
    return secrets.token_hex(6)


class Alert(models.Model):
    """One stretch of trouble on one queue and kind, from firing until resolved."""

    class State(models.TextChoices):
        FIRING = "firing", "firing"
        RESOLVED = "resolved", "resolved"

    key = models.CharField(
        "key", max_length=16, default=_alert_key, unique=True, help_text="Labels its Jira issue."
    )
    queue = models.CharField("queue", max_length=32, blank=True, help_text="Empty for a global alert.")
    kind = models.CharField("kind", max_length=32, choices=Kind.choices)
    severity = models.CharField("severity", max_length=16, choices=Severity.choices)
    state = models.CharField("state", max_length=16, choices=State.choices, default=State.FIRING)
    started_at = models.DateTimeField("started at")
    critical_since = models.DateTimeField(
        "critical since", null=True, blank=True, help_text="When it last became critical."
    )
    clear_since = models.DateTimeField(
        "clear since",
        null=True,
        blank=True,
        help_text="Its condition has been clear since then; resolved after ALERT_RESOLVE_QUIET_MS.",
    )
    resolved_at = models.DateTimeField("resolved at", null=True, blank=True)
    last_notified_at = models.DateTimeField("last notified at", null=True, blank=True)
    announced_at = models.DateTimeField(
        "announced at", null=True, blank=True, help_text="When its current severity was announced."
    )
    notified_severity = models.CharField(
        "announced as", max_length=16, blank=True, help_text="The severity the on-call team was told of."
    )
    silenced_severity = models.CharField("silenced as", max_length=16, blank=True)
    escalated_severity = models.CharField(
        "escalated as", max_length=16, blank=True, help_text="Sent again past its acknowledge deadline."
    )
    dead_letter_notified = models.PositiveBigIntegerField(
        "dead-letter count told", default=0, help_text="Dead-letter jobs at the last notification."
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="acknowledged by (user)",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    acknowledged_by_name = models.CharField(
        "first responder", max_length=150, blank=True, help_text="Who acknowledged: a user or a token."
    )
    acknowledged_at = models.DateTimeField("acknowledged at", null=True, blank=True)
    jira_key = models.CharField("Jira issue", max_length=64, blank=True)
    jira_created_at = models.DateTimeField("Jira issue opened at", null=True, blank=True)
    jira_resolved_at = models.DateTimeField("Jira told of resolution at", null=True, blank=True)
    jira_busy_until = models.DateTimeField(
        "Jira claimed until", null=True, blank=True, help_text="One process talks to Jira about it at a time."
    )
    jira_error = models.CharField("last Jira error", max_length=300, blank=True)
    grafana_annotation_id = models.PositiveBigIntegerField(
        "Grafana annotation",
        null=True,
        blank=True,
        help_text="The annotation marking it on Grafana's graphs (GRAFANA_URL); a region once resolved.",
    )
    payload = models.JSONField("payload", default=dict, help_text="The figures and thresholds last seen.")

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # At most one firing alert per queue and kind: two evaluators racing create one.
            models.UniqueConstraint(
                fields=["queue", "kind"], condition=Q(state="firing"), name="alert_one_firing"
            )
        ]
        indexes = [models.Index(fields=["state", "-started_at"], name="alert_state_recent")]
        permissions = [("acknowledge_alert", "Can acknowledge alerts")]

    def __str__(self) -> str:
        return f"{self.severity} {self.kind} on {self.queue or 'all queues'} ({self.state})"

    @property
    def firing(self) -> bool:
        return self.state == self.State.FIRING

    @property
    def label(self) -> str:
        return f"mrdj-alert-{self.key}"


class Notification(models.Model):
    """One message to the on-call team; sent to every configured target as deliveries."""

    class Event(models.TextChoices):
        FIRING = "firing", "firing"
        ESCALATED = "escalated", "escalated to critical"
        DEAD_LETTER = "dead_letter", "more dead-letter jobs"
        UNACKNOWLEDGED = "unacknowledged", "not acknowledged in time"
        RESOLVED = "resolved", "resolved"
        ACKNOWLEDGED = "acknowledged", "acknowledgement"
        DR = "dr", "activate the DR plan"
        INCIDENT = "incident", "incident reminder or status update"
        SMOKE = "smoke", "smoke test"

    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE)
    event = models.CharField("event", max_length=16, choices=Event.choices)
    severity = models.CharField("severity", max_length=16, blank=True)
    created_at = models.DateTimeField("created at", db_index=True)
    message = models.CharField("message", max_length=500)
    content = models.JSONField("content", help_text="What every service's message is built from.")
    silenced_by = models.ForeignKey(
        "Silence", null=True, blank=True, on_delete=models.SET_NULL, help_text="Recorded, not sent."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("send_test_alert", "Can send a test alert to every webhook")]

    def __str__(self) -> str:
        return self.message


class Delivery(models.Model):
    """A notification to one target. Holds no URL: webhook URLs are secrets."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENDING = "sending", "sending"
        RETRY = "retry", "waiting to retry"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    service = models.CharField("service", max_length=16)
    target = models.CharField(
        "target", max_length=200, help_text="The URL's service and host, never its secret path."
    )
    target_hash = models.CharField(
        "target fingerprint", max_length=64, help_text="Finds the URL again in ALERT_WEBHOOK_URLS."
    )
    channel = models.CharField("channel", max_length=80, blank=True)
    status = models.CharField("status", max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField("attempts", default=0)
    next_attempt_at = models.DateTimeField("next try at")
    claimed_until = models.DateTimeField("claimed until", null=True, blank=True)
    response_code = models.PositiveIntegerField("response code", null=True, blank=True)
    response_body = models.CharField("response", max_length=300, blank=True)
    error = models.CharField("error", max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField("duration (ms)", null=True, blank=True)
    sent_at = models.DateTimeField("sent at", null=True, blank=True)

    class Meta:
        ordering = ["-notification__created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_status_due")]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.service} {self.target}: {self.status}"


class ThrottleMark(models.Model):
    """When a queue, kind and severity was last sent: claimed with one conditional UPDATE."""

    queue = models.CharField(max_length=32, blank=True)
    kind = models.CharField(max_length=32)
    severity = models.CharField(max_length=16)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["queue", "kind", "severity"], name="throttle_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.queue or 'all'} {self.kind} {self.severity} last sent {self.sent_at}"


# Longer would be forgetting, not silencing; and a far date (year 10000) breaks the database.
SILENCE_MAX_AHEAD = timedelta(days=30)


class Silence(models.Model):
    queue = models.CharField(
        "queue",
        max_length=32,
        blank=True,
        choices=[(ALL_QUEUES, "everything")] + list(QUEUE_CHOICES),
        help_text="Leave empty to silence every alert.",
    )
    reason = models.CharField("reason", max_length=300)
    starts_at = models.DateTimeField("from")
    ends_at = models.DateTimeField("until", help_text="The silence expires by itself at this time.")
    created_by = models.CharField("by", max_length=150)

    class Meta:
        ordering = ["-ends_at"]
        indexes = [models.Index(fields=["ends_at"], name="silence_ends")]

    def __str__(self) -> str:
        return f"silence of {self.queue or 'everything'} until {shown(self.ends_at)}"

    @classmethod
    def covering(cls, queue: str, now: datetime) -> Silence | None:
        """The silence in force for the queue now, its own or the one over every queue."""
        return cls.objects.filter(queue__in={ALL_QUEUES, queue}, starts_at__lte=now, ends_at__gt=now).first()

    def clean(self) -> None:
        starts = self.starts_at or timezone.now()
        if self.ends_at and self.ends_at <= starts:
            raise ValidationError({"ends_at": "the silence must end in the future"})
        if self.ends_at and self.ends_at > starts + SILENCE_MAX_AHEAD:
            raise ValidationError(
                {"ends_at": f"a silence lasts at most {SILENCE_MAX_AHEAD.days} days: set a nearer end"}
            )
        if not (self.reason or "").strip():
            raise ValidationError({"reason": "say why alerts are silenced"})
        if one_line_problem(self.reason):
            raise ValidationError({"reason": one_line_problem(self.reason)})


class DrActivation(models.Model):
    """The DR plan's trigger, once per incident: open until every alert has resolved."""

    reason = models.CharField("reason", max_length=300)
    triggered_at = models.DateTimeField("triggered at")
    ended_at = models.DateTimeField("ended at", null=True, blank=True)
    alerts = models.ManyToManyField(Alert, blank=True, related_name="+")
    # True while open, NULL once ended: unique, so two evaluators racing open one activation.
    open = models.BooleanField("open", null=True, default=True, unique=True)

    class Meta:
        ordering = ["-triggered_at"]
        verbose_name = "DR activation"

    def __str__(self) -> str:
        return f"DR {shown(self.triggered_at)}: {self.reason}"


class SlackUser(models.Model):
    """Who a Slack user is in mrdj, for the Acknowledge button in Slack. Without a row here,
    mrdj looks for a staff user with the Slack profile's e-mail (needs SLACK_BOT_TOKEN)."""

    slack_user_id = models.CharField(
        "Slack user ID",
        max_length=32,
        unique=True,
        help_text="Such as U012AB3CD (Slack: profile → Copy member ID).",
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="mrdj user", on_delete=models.CASCADE)

    class Meta:
        verbose_name = "Slack user"

    def __str__(self) -> str:
        return f"{self.slack_user_id} → {self.user}"


class EvaluatorLease(models.Model):
    """Held by the one process that evaluates alerts for the whole deployment; it runs out by
    itself when that process dies, and another candidate takes it over (alerting.evaluator)."""

    name = models.CharField("duty", max_length=32, unique=True)
    holder = models.CharField("held by", max_length=200, blank=True, help_text="host:pid")
    held_until = models.DateTimeField("held until", null=True, blank=True)

    class Meta:
        verbose_name = "evaluator lease"

    def __str__(self) -> str:
        return f"{self.name}: {self.holder or 'free'}"

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """One operator action: who did what to what, with the state before and after."""

    created_at = models.DateTimeField(
        "when", default=timezone.now, db_index=True, help_text="When the action was taken."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="user",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The logged-in user, when the action came from one.",
    )
    actor = models.CharField(
        "who",
        max_length=150,
        help_text="Username, or how a machine acted (cli:<login>, token:ops); kept when the user is deleted.",
    )
    action = models.CharField(
        "what",
        max_length=64,
        help_text="Kind of action, such as flag.change, queue.flush, deadletter.replay, alert.ack.",
    )
    target = models.CharField(
        "on", max_length=200, blank=True, help_text="What the action touched: a flag, a queue, an alert."
    )
    before = models.JSONField("before", null=True, blank=True, help_text="State before the action.")
    after = models.JSONField("after", null=True, blank=True, help_text="State after the action.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["action", "-created_at"], name="audit_action_recent")]
        verbose_name = "audit event"
        # Flags live in managed.env, not in a model: the permission to change them lives here.
        permissions = [("change_flags", "Can change feature flags and the queue mode")]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target}".strip()


class Process(models.Model):
    """One running mrdj process (host:pid): which role it plays, whether it consumes jobs and
    when it was last seen doing so (the stall detector's and the dashboard's evidence), and
    when its telemetry last exported (the silence detector's). mrdj.processes reads and
    writes it."""

    class Role(models.TextChoices):
        WEB = "web", "web"
        WORKER = "worker", "Celery worker"
        BEAT = "beat", "Celery beat"

    class Consumes(models.TextChoices):
        NOTHING = "", "nothing"
        CELERY = "celery", "Celery tasks"
        IN_PROCESS = "in-process", "in-process"

    name = models.CharField(
        "process",
        max_length=200,
        unique=True,
        help_text="host:pid (a Celery pool process beats under its worker's pid).",
    )
    role = models.CharField("role", max_length=16, choices=Role.choices)
    consumes = models.CharField(
        "consumes jobs",
        max_length=16,
        choices=Consumes.choices,
        blank=True,
        default=Consumes.NOTHING,
        help_text="As a Celery worker, as a web process's in-process worker, or not at all.",
    )
    seen_at = models.DateTimeField(
        "last seen",
        help_text="A job consumer's heartbeat, every few seconds; for others, when it registered.",
    )
    started_at = models.DateTimeField(
        "telemetry started at",
        null=True,
        blank=True,
        help_text="When it started exporting telemetry (empty if it does not): silence counts "
        "from here until its first export.",
    )
    last_export_at = models.DateTimeField("last successful export", null=True, blank=True)

    class Meta:
        ordering = ["-seen_at"]
        indexes = [models.Index(fields=["seen_at"], name="process_seen")]  # alive(), prune()
        verbose_name = "process"
        verbose_name_plural = "processes"

    def __str__(self) -> str:
        return f"{self.role} {self.name}"


class ConfigVersion(models.Model):
    """One change of managed.env made through mrdj (dashboard or `manage.py config`): who, when,
    which variables, before and after. Secrets are kept only as set/unset and a fingerprint."""

    created_at = models.DateTimeField("when", default=timezone.now)
    actor = models.CharField("who", max_length=150)
    changes = models.JSONField(
        "changes", help_text='{"NAME": {"before": ..., "after": ...}}; a secret as "set (ab12cd)".'
    )
    values = models.JSONField(
        "values after", help_text="Every non-secret variable managed.env held after the change."
    )
    note = models.CharField("note", max_length=200, blank=True, help_text="Such as: rollback to version 3.")

    class Meta:
        ordering = ["-id"]
        verbose_name = "configuration version"
        permissions = [("change_configuration", "Can change configuration (managed.env) from mrdj")]

    def __str__(self) -> str:
        return f"version {self.pk} by {self.actor}"


class Pulse(models.Model):
    """When a periodic duty (the reconciler, the alert evaluation) last ran, in any process: the
    evidence the dead-man's switch judges mrdj's health by."""

    name = models.CharField("duty", max_length=64, unique=True, help_text="Such as reconciler.")
    at = models.DateTimeField("last ran at", help_text="When it last finished a run.")

    class Meta:
        ordering = ["name"]
        verbose_name = "pulse"

    def __str__(self) -> str:
        return f"{self.name} last ran at {self.at.isoformat()}"

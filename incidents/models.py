from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from alerting.models import Alert, DrActivation, Severity
from mrdj import audit
from mrdj.times import shown


class Incident(models.Model):
    """One incident of the playbook's sections 4, 5 and 7: from the critical alert (or the DR
    trigger, or someone opening it by hand) until its Incident Commander declares it resolved."""

    class State(models.TextChoices):
        OPEN = "open", "open"
        MITIGATED = "mitigated", "mitigated"
        RESOLVED = "resolved", "resolved"

    title = models.CharField("title", max_length=200)
    severity = models.CharField("severity", max_length=16, choices=Severity.choices)
    state = models.CharField("state", max_length=16, choices=State.choices, default=State.OPEN)
    queues = models.JSONField(
        "queues", default=list, blank=True, help_text='Queues it concerns; "" stands for every queue.'
    )
    opened_at = models.DateTimeField("opened at", help_text="Customer impact counts from here.")
    opened_by = models.CharField("opened by", max_length=150, help_text="mrdj, or who opened it by hand.")
    critical_at = models.DateTimeField(
        "critical since", null=True, blank=True, help_text="The Incident Commander deadline counts from here."
    )
    alerts = models.ManyToManyField(Alert, through="IncidentAlert", related_name="incidents", blank=True)
    dr_activation = models.OneToOneField(
        DrActivation, null=True, blank=True, on_delete=models.SET_NULL, related_name="incident"
    )
    dr_activated_at = models.DateTimeField("DR plan activated at", null=True, blank=True)
    dr_reason = models.CharField("DR trigger", max_length=300, blank=True)
    mitigated_at = models.DateTimeField("mitigated at", null=True, blank=True)
    resolved_at = models.DateTimeField("resolved at", null=True, blank=True)
    resolved_by = models.CharField("resolved by", max_length=150, blank=True)
    root_cause = models.TextField("root cause", blank=True)
    last_update_at = models.DateTimeField(
        "last status update", null=True, blank=True, help_text="The update cadence counts from here."
    )
    commander_reminded_at = models.DateTimeField(null=True, blank=True)
    update_reminded_at = models.DateTimeField(null=True, blank=True)
    owner_prompted_at = models.DateTimeField(null=True, blank=True)
    checklist = models.JSONField(
        "checklist", default=dict, blank=True, help_text="The items people ticked: who, when, and a value."
    )

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["state", "-opened_at"], name="incident_state_recent")]

    def __str__(self) -> str:
        return f"{self.reference}: {self.title}"

    @property
    def reference(self) -> str:
        """The incident's name in Slack, Jira and its folder (/share/incidents/<reference>)."""
        return f"INC-{timezone.localtime(self.opened_at):%Y%m%d}-{self.pk}"

    @property
    def active(self) -> bool:
        return self.state != self.State.RESOLVED

    def add_entry(self, kind: str, text: str, at, actor: str = "mrdj", notification=None) -> Entry:
        return Entry.objects.create(
            incident=self, at=at, kind=kind, actor=actor, text=text, notification=notification
        )


class IncidentAlert(models.Model):
    """An alert belongs to one incident at most: two evaluators racing link it once."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE)
    alert = models.OneToOneField(Alert, on_delete=models.CASCADE, related_name="incident_link")
    joined_at = models.DateTimeField("joined at")

    class Meta:
        ordering = ["joined_at", "id"]

    def __str__(self) -> str:
        return f"alert {self.alert_id} in incident {self.incident_id}"


class Role(models.Model):
    """Someone holding one of the playbook's roles (section 4) in one incident."""

    class Name(models.TextChoices):
        FIRST_RESPONDER = "first_responder", "First responder"
        COMMANDER = "commander", "Incident Commander"
        COMMUNICATIONS = "communications", "Communications Lead"
        PRODUCT_OWNER = "product_owner", "Product Owner"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField("role", max_length=32, choices=Name.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    holder = models.CharField("who", max_length=150, help_text="Kept when the user is deleted.")
    since = models.DateTimeField("since")

    class Meta:
        ordering = ["incident", "name"]
        constraints = [models.UniqueConstraint(fields=["incident", "name"], name="role_one_holder")]

    def __str__(self) -> str:
        return f"{self.get_name_display()}: {self.holder}"

    def held_by(self, actor) -> bool:
        """actor: a user, or how a machine acts (cli:<login>) as the audit trail names it."""
        fields = audit.actor_fields(actor)
        if self.user_id is not None and fields["user"] is not None:
            return self.user_id == fields["user"].pk
        return self.holder == fields["actor"]


class OutboundTries(models.Model):
    """A call out of an incident (the DR bridge, a status-page post), tried until the service
    accepts it: its tries and last answer (incidents.outbound claims and schedules them)."""

    attempts = models.PositiveIntegerField("tries", default=0)
    next_attempt_at = models.DateTimeField(
        "next try at", null=True, blank=True, help_text="Empty once accepted, or given up on."
    )
    claimed_until = models.DateTimeField(
        "being sent until", null=True, blank=True, help_text="One process sends it at a time."
    )
    tried_at = models.DateTimeField("last try at", null=True, blank=True)
    response_code = models.PositiveIntegerField("last answer", null=True, blank=True)
    error = models.CharField("last error", max_length=300, blank=True)

    class Meta:
        abstract = True


class DrBridge(OutboundTries):
    """The incident's DR bridge: the Slack workflow (ALERT_DR_BRIDGE_WEBHOOK_URL) that opens the war
    room, started once per incident (unique: two processes racing ask once), tried again until
    Slack accepts it. incidents.dr_bridge sends it."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="dr_bridge")
    requested_at = models.DateTimeField("asked for at")
    requested_by = models.CharField(
        "asked for by", max_length=150, help_text="mrdj, or who pressed the button."
    )
    created_at = models.DateTimeField(
        "created at",
        null=True,
        blank=True,
        help_text="When the Slack workflow accepted it: never sent again.",
    )

    class Meta:
        verbose_name = "DR bridge"
        indexes = [models.Index(fields=["next_attempt_at"], name="dr_bridge_due")]

    def __str__(self) -> str:
        return f"DR bridge of incident {self.incident_id}"


class StatusPagePost(OutboundTries):
    """One status update to publish on the status page (Atlassian Statuspage): the incident's
    first creates the status-page incident, later ones update it. An incident's posts go in
    order, one at a time, each tried again until Statuspage accepts it. incidents.statuspage
    sends them."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="status_page_posts")
    requested_at = models.DateTimeField("asked for at")
    requested_by = models.CharField("asked for by", max_length=150, help_text="Who posted the update.")
    status = models.CharField(
        "status on the page", max_length=16, help_text="investigating, identified, monitoring or resolved."
    )
    body = models.TextField("text", help_text="What the status page shows.")
    components = models.JSONField(
        "components", default=dict, blank=True, help_text="Statuspage component id: its status."
    )
    statuspage_id = models.CharField(
        "Statuspage incident", max_length=64, blank=True, help_text="The one it created or updated."
    )
    published_at = models.DateTimeField(
        "published at", null=True, blank=True, help_text="When Statuspage accepted it: never sent again."
    )

    class Meta:
        ordering = ["incident", "id"]
        verbose_name = "status page post"
        indexes = [models.Index(fields=["next_attempt_at"], name="status_page_post_due")]

    def __str__(self) -> str:
        return f"status page post {self.pk} of incident {self.incident_id}"


class Entry(models.Model):
    """What only the incident knows: it opened, an alert joined, a role was taken, a note, a status
    update, a checklist tick, a reminder. The rest of its timeline is read from where it is recorded."""

    class Kind(models.TextChoices):
        OPENED = "opened", "opened"
        JOINED = "joined", "alert joined"
        DR = "dr", "DR plan activated"
        ROLE = "role", "role taken"
        NOTE = "note", "note"
        UPDATE = "update", "status update"
        CHECKLIST = "checklist", "checklist"
        ROOT_CAUSE = "root_cause", "root cause"
        STATE = "state", "state"
        REMINDER = "reminder", "reminder"
        STATUS_PAGE = "status_page", "status page"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="entries")
    at = models.DateTimeField("when")
    kind = models.CharField("kind", max_length=16, choices=Kind.choices)
    actor = models.CharField("who", max_length=150, blank=True)
    text = models.TextField("what")
    notification = models.ForeignKey(
        "alerting.Notification", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "entries"

    def __str__(self) -> str:
        return f"{shown(self.at)} {self.kind}: {self.text[:60]}"


class Ticket(models.Model):
    """A Jira issue of one of the incident's alerts, as Jira last described it."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="tickets")
    key = models.CharField("Jira issue", max_length=64)
    status = models.CharField("status in Jira", max_length=64, blank=True)
    done = models.BooleanField("resolved in Jira", default=False)
    checked_at = models.DateTimeField("last asked Jira", null=True, blank=True)
    root_cause_posted = models.TextField(
        "root cause posted", blank=True, help_text="The root cause as last commented on the issue."
    )
    error = models.CharField("last Jira error", max_length=300, blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["incident", "key"], name="ticket_once_per_incident")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status or 'not checked'})"


class Lease(models.Model):
    """Held by the one process linking alerts to incidents, so two evaluations never open two
    incidents for the same trouble; it runs out by itself if that process dies."""

    name = models.CharField(max_length=32, unique=True)
    held_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from alerting import alert_actions
from alerting.models import (
    Alert,
    Delivery,
    DrActivation,
    EvaluatorLease,
    Notification,
    Silence,
    SlackUser,
    Threshold,
)
from alerting.thresholds import inherited, pair_errors
from mrdj import audit
from mrdj.admin import ReadOnlyAdmin


class ThresholdForm(forms.ModelForm):
    class Meta:
        model = Threshold
        fields = "__all__"  # noqa: DJ007 (every threshold field is the operator's to set)

    def _post_clean(self) -> None:
        """After the row is built from the form: a warning above its critical is refused on
        the field (alerting.thresholds.pair_errors, which knows what the row inherits)."""
        super()._post_clean()
        for field, message in pair_errors(self.instance).items():
            self.add_error(field, message)


@admin.register(Threshold)
class ThresholdAdmin(admin.ModelAdmin):
    """A warning above its critical is refused on the field (ThresholdForm)."""

    form = ThresholdForm

    list_display = (
        "__str__",
        "warning_backlog",
        "critical_backlog",
        "warning_retry_age_ms",
        "critical_retry_age_ms",
        "dead_letter_warning",
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        fallback = inherited(obj.queue if obj else "")
        for name, value in fallback.items():
            if name in form.base_fields:
                form.base_fields[name].help_text += f" Empty: {value} (inherited)."
        return form

    def save_model(self, request, obj, form, change):
        before = {name: form.initial.get(name) for name in form.changed_data}
        super().save_model(request, obj, form, change)
        after = {name: form.cleaned_data.get(name) for name in form.changed_data}
        audit.record("threshold.change", actor=request.user, target=str(obj), before=before, after=after)


# What an operator needs to judge a delivery: where it went, what came back, how long it took.
DELIVERY_COLUMNS = (
    "service",
    "target",
    "channel",
    "status",
    "attempts",
    "response_code",
    "error",
    "duration_ms",
    "sent_at",
)


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = DELIVERY_COLUMNS
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "queue",
        "kind",
        "severity",
        "state",
        "started_at",
        "acknowledged_by_name",
        "jira_key",
        "summary",
    )
    list_filter = ("state", "severity", "kind", "queue")
    date_hierarchy = "started_at"
    actions = ["acknowledge_selected"]

    @admin.display(description="figures")
    def summary(self, alert: Alert) -> str:
        figures = alert.payload.get("figures", {})
        return (
            f"backlog {figures.get('backlog', '-')}, retry age {figures.get('retry_age_ms', '-')} ms, "
            f"dead-letter {figures.get('dead_letter', '-')}"
        )

    @admin.action(
        description="Acknowledge the selected alerts (you become first responder)",
        permissions=["acknowledge"],
    )
    def acknowledge_selected(self, request, queryset):
        done = sum(
            alert_actions.acknowledge(alert, request.user)
            for alert in queryset.filter(state=Alert.State.FIRING)
        )
        self.message_user(
            request, f"{done} alert(s) acknowledged.", messages.SUCCESS if done else messages.WARNING
        )

    def has_acknowledge_permission(self, request):
        return request.user.has_perm("alerting.acknowledge_alert")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event", "severity", "message", "silenced_by")
    list_filter = ("event", "severity")
    date_hierarchy = "created_at"
    inlines = [DeliveryInline]
    exclude = ("content",)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "notification", *DELIVERY_COLUMNS)
    list_filter = ("status", "service")
    list_select_related = ("notification",)


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = ("__str__", "queue", "reason", "starts_at", "ends_at", "created_by", "active")
    fields = ("queue", "ends_at", "reason")
    actions = ["expire_now"]

    @admin.display(boolean=True)
    def active(self, silence: Silence) -> bool:
        return silence.starts_at <= timezone.now() < silence.ends_at

    def has_change_permission(self, request, obj=None):
        return False  # a silence is created or expired, both audited; never edited

    def has_delete_permission(self, request, obj=None):
        return False

    def get_changeform_initial_data(self, request):
        return {"ends_at": timezone.now() + timezone.timedelta(hours=1)}

    def save_model(self, request, obj, form, change):
        created = alert_actions.create_silence(obj.queue, obj.ends_at, obj.reason, request.user)
        obj.pk = created.pk

    @admin.action(description="Expire the selected silences now", permissions=["add"])
    def expire_now(self, request, queryset):
        done = sum(alert_actions.expire_silence(silence, request.user) for silence in queryset)
        self.message_user(request, f"{done} silence(s) expired.")


@admin.register(DrActivation)
class DrActivationAdmin(ReadOnlyAdmin):
    list_display = ("triggered_at", "reason", "ended_at")


@admin.register(EvaluatorLease)
class EvaluatorLeaseAdmin(ReadOnlyAdmin):
    """Which process evaluates the alerts now; it moves by itself when that process dies."""

    list_display = ("name", "holder", "held_until")


@admin.register(SlackUser)
class SlackUserAdmin(admin.ModelAdmin):
    """Link Slack users to mrdj users, for the Acknowledge button in Slack."""

    list_display = ("slack_user_id", "user")
    search_fields = ("slack_user_id", "user__username", "user__email")

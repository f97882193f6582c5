from django.contrib import admin

from mrdj.models import AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that only the system writes: shown, never added, edited or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit trail is written by the actions themselves."""

    list_display = ("created_at", "actor", "action", "target", "before", "after")
    list_filter = ("action",)
    search_fields = ("actor", "target")
    date_hierarchy = "created_at"

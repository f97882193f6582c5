from django.contrib import admin

from mrdj.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read only: the audit trail is written by the actions themselves."""

    list_display = ("created_at", "actor", "action", "target", "before", "after")
    list_filter = ("action",)
    search_fields = ("actor", "target")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

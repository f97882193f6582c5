from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse

from mrdj.models import AuditEvent, ConfigVersion

# The login page and the admin are mrdj's, not "Django administration".
admin.site.site_header = "mrdj: Mister DJ operations"
admin.site.site_title = "mrdj"
admin.site.index_title = "Administration"


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


@admin.register(ConfigVersion)
class ConfigVersionAdmin(ReadOnlyAdmin):
    """The admin's entry for configuration: the Configuration tab edits it, with history."""

    def changelist_view(self, request, extra_context=None):
        return redirect("dashboard:config")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect(f"{reverse('dashboard:config-history')}#version-{object_id}")

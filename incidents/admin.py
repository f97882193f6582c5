from django.contrib import admin

from incidents.models import Entry, Incident, Role, Ticket


class RoleInline(admin.TabularInline):
    model = Role
    extra = 0
    readonly_fields = ["name", "holder", "user", "since"]
    can_delete = False


class TicketInline(admin.TabularInline):
    model = Ticket
    extra = 0
    readonly_fields = ["key", "status", "done", "checked_at", "error"]
    exclude = ["root_cause_posted"]
    can_delete = False


class EntryInline(admin.TabularInline):
    model = Entry
    extra = 0
    readonly_fields = ["at", "kind", "actor", "text"]
    exclude = ["notification"]
    can_delete = False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    """Read-only: incidents change through the dashboard, where every action is audited."""

    list_display = ["__str__", "severity", "state", "opened_at", "resolved_at"]
    list_filter = ["state", "severity"]
    inlines = [RoleInline, TicketInline, EntryInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

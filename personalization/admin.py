from django.contrib import admin

from mrdj.admin import ReadOnlyAdmin
from personalization.models import VisitorEvent


@admin.register(VisitorEvent)
class VisitorEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "visitor_id", "type", "package", "event_id")
    list_filter = ("type",)
    search_fields = ("=visitor_id", "=event_id")
    date_hierarchy = "occurred_at"
    show_full_result_count = False

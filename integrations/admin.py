from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from integrations import operations
from integrations.models import Attempt, Job, QueueCounter
from integrations.queues import QUEUES
from mrdj.admin import ReadOnlyAdmin


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration_ms", "status_code", "error", "outcome")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "queue",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_status_code",
        "last_error",
    )
    list_filter = ("queue", "status")
    search_fields = ("=id", "idempotency_key")
    date_hierarchy = "created_at"
    show_full_result_count = False  # no COUNT(*) over a large table on every page
    inlines = [AttemptInline]
    actions = ["flush_selected", "replay_selected"]
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request):
        return False

    def _per_queue(self, request: HttpRequest, queryset: QuerySet, action, verb: str) -> None:
        moved = 0
        selected = queryset.values_list("queue", "pk")
        by_queue: dict[str, list[int]] = {}
        for queue, pk in selected:
            by_queue.setdefault(queue, []).append(pk)
        for queue, ids in by_queue.items():
            moved += action(QUEUES[queue], request.user, ids)
        level = messages.SUCCESS if moved else messages.WARNING
        self.message_user(request, f"{moved} job{'s' if moved != 1 else ''} {verb}.", level)

    @admin.action(description="Flush: retry the selected waiting jobs now", permissions=["flush"])
    def flush_selected(self, request, queryset):
        self._per_queue(request, queryset, operations.flush, "flushed")

    @admin.action(description="Replay the selected dead-letter jobs", permissions=["replay"])
    def replay_selected(self, request, queryset):
        self._per_queue(request, queryset, operations.replay, "replayed")

    def has_flush_permission(self, request):
        return request.user.has_perm("integrations.flush_job")

    def has_replay_permission(self, request):
        return request.user.has_perm("integrations.replay_job")


@admin.register(QueueCounter)
class QueueCounterAdmin(ReadOnlyAdmin):
    list_display = ("queue", "status", "count")

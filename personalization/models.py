from __future__ import annotations

from django.db import models


class VisitorEvent(models.Model):
    """One event from the Mister DJ website, stored once per event id."""

    event_id = models.CharField(
        "event id", max_length=100, unique=True, help_text="The website's id; replays are stored once."
    )
    visitor_id = models.CharField("visitor", max_length=100)
    type = models.CharField("type", max_length=64, help_text="page_view, package_viewed, quote_requested...")
    package = models.CharField(
        "package", max_length=100, blank=True, help_text="properties.package, when the event names one."
    )
    properties = models.JSONField("properties", default=dict)
    occurred_at = models.DateTimeField("occurred at", help_text="The event's own timestamp.")
    received_at = models.DateTimeField("received at", auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["visitor_id", "occurred_at"], name="event_visitor_time"),
            models.Index(fields=["occurred_at"], name="event_time"),  # retention deletes by age
        ]
        verbose_name = "visitor event"

    def __str__(self) -> str:
        return f"{self.type} by {self.visitor_id} at {self.occurred_at:%Y-%m-%d %H:%M}"

"""Record operator actions (flag changes, flushes, replays, acknowledgements)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from mrdj.models import AuditEvent


def actor_fields(actor: Any) -> dict[str, Any]:
    """A user becomes user + username; anything else is a label such as 'cli:root'."""
    if getattr(actor, "is_authenticated", False):
        return {"user": actor, "actor": actor.get_username()}
    return {"user": None, "actor": str(actor or "unknown")[:150]}


def record(
    action: str,
    *,
    actor: Any,
    target: str = "",
    before: Any = None,
    after: Any = None,
    at: datetime | None = None,
) -> AuditEvent:
    """at: when it happened, for callers that take now (so a timeline built from the trail
    keeps its order when tests move time); the real clock otherwise."""
    return AuditEvent.objects.create(
        action=action,
        target=target[:200],
        before=before,
        after=after,
        created_at=at or timezone.now(),
        **actor_fields(actor),
    )

"""The configuration variables of personalization (see mrdj/declarations.py)."""

from __future__ import annotations

from mrdj.declarations import Kind, Variable, declare
from mrdj.variables import PERSONALIZATION

declare(
    Variable(
        "PERSONALIZATION_WEBHOOK_SECRET",
        Kind.TEXT,
        "",
        "Shared secret the website signs POST /webhooks/personalization with (HMAC-SHA256); "
        "unset: every event is refused.",
        PERSONALIZATION,
        secret=True,
    ),
    Variable(
        "PERSONALIZATION_API_TOKEN",
        Kind.TEXT,
        "",
        "Bearer token of GET /api/personalization/<visitor_id>; unset: no token is accepted.",
        PERSONALIZATION,
        secret=True,
    ),
    Variable(
        "PERSONALIZATION_RETENTION_DAYS",
        Kind.INT,
        "365",
        "Visitor events older than this many days are deleted (hourly, by beat).",
        PERSONALIZATION,
        minimum=1,
    ),
)

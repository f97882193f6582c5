"""Reactions to what happens in mrdj below."""

from __future__ import annotations

from integrations import dispatch
from integrations.queues import QUEUES


def resume_queue_on_flag(sender, name: str, new: bool | None, **kwargs) -> None:
    """A queue switched back on hands its held jobs on at once, not at the next beat."""
    if new and any(queue.flag == name for queue in QUEUES.values()):
        dispatch.kick()

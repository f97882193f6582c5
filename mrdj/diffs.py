"""Changes shown as diffs: an operator reads what an action changed line by line, not as two
Python dicts side by side (the audit trail, a job's edited payload)."""

from __future__ import annotations

import difflib
import json
from typing import Any


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.splitlines() or [""]
    return pretty_json(value).splitlines()


def diff_lines(before: Any, after: Any) -> list[tuple[str, str]]:
    """Both values as one diff, (kind, line) per line: kind is 'add', 'del' or '' (unchanged).
    Unchanged values give no lines."""
    old, new = _lines(before), _lines(after)
    lines = difflib.unified_diff(old, new, lineterm="", n=max(len(old), len(new)))
    kinds = {"+": "add", "-": "del"}
    return [
        (kinds.get(line[:1], ""), line)
        for line in lines
        if not line.startswith(("+++", "---", "@@"))  # one hunk, the whole value: no headers
    ]

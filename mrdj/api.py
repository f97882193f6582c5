"""What every JSON endpoint shares: reading a bounded JSON body, and errors that say what is wrong.

A body is refused (400, naming the problem) rather than stored when PostgreSQL or an
upstream could not take it: NaN and Infinity (not JSON, though Python's parser allows
them), numbers too large for a float, nesting deeper than MAX_JSON_DEPTH, and strings
holding NUL or a lone surrogate (jsonb refuses both).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def moment(raw: str, name: str) -> datetime | None:
    """An ISO 8601 date, or date and time, from a query or form field (None when empty); without a
    zone, in the current one (the operator's). Returned in UTC: PostgreSQL refuses offsets past
    15:59 that Python accepts (+16:00), and would fail in the middle of a streamed answer."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
        aware = timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed
        return aware.astimezone(UTC)
    except ValueError:
        raise BadRequest(
            f"'{name}' is not an ISO 8601 date or date and time, such as 2026-11-01T00:00:00Z"
        ) from None
    except OverflowError:
        raise BadRequest(f"'{name}' is out of range once converted to UTC") from None


def json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def read_body(request: HttpRequest, max_bytes: int) -> bytes:
    """The raw body, refused with 413 before it is read when it says it is too large."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if ascii_digits(declared) and int(declared) > max_bytes:
        raise BadRequest(f"body is larger than {max_bytes} bytes", 413)
    if not request.META.get("CONTENT_LENGTH") and _chunked(request):
        # Django reads CONTENT_LENGTH bytes, none for a chunked body: the server (gunicorn)
        # has decoded the chunks, so read the stream itself, one byte past the limit.
        body = request.META["wsgi.input"].read(max_bytes + 1)
    else:
        body = request.body
    if len(body) > max_bytes:
        raise BadRequest(f"body is larger than {max_bytes} bytes", 413)
    return body


def _chunked(request: HttpRequest) -> bool:
    return (
        "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and "wsgi.input" in request.META
    )


MAX_JSON_DEPTH = 32  # objects and arrays inside each other; real payloads use a handful
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def ascii_digits(text: str, max_length: int = 18) -> bool:
    """Only 0-9, so that int() takes it (str.isdigit() also admits '²' and other scripts' digits)."""
    return 0 < len(text) <= max_length and text.isascii() and text.isdigit()


def _not_json(constant: str):
    raise BadRequest(f"body is not valid JSON: {constant} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise BadRequest(f"body holds a number too large to store: {text[:40]}")
    return number


def parse_json(body: bytes, allow_empty: bool = False) -> Any:
    if allow_empty and not body.strip():
        return {}
    try:
        data = json.loads(body, parse_constant=_not_json, parse_float=_finite)
    except RecursionError:
        raise BadRequest(f"body is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as problem:
        raise BadRequest(f"body is not valid JSON: {problem}") from None
    _check_tree(data)
    return data


def _check_tree(data: Any) -> None:
    """Depth and strings, walked without recursion (a hostile body cannot exhaust the stack)."""
    pending = [(data, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"body is nested more than {MAX_JSON_DEPTH} levels deep")
            children = node.values() if isinstance(node, dict) else node
            pending.extend((child, depth + 1) for child in children)
            if isinstance(node, dict):
                pending.extend((key, depth) for key in node)
        elif isinstance(node, str) and UNSTORABLE.search(node):
            raise BadRequest(
                "body holds a string with a NUL character or a lone surrogate (\\u0000, \\ud800...)"
            )


def read_json(request: HttpRequest, max_bytes: int, allow_empty: bool = False) -> Any:
    return parse_json(read_body(request, max_bytes), allow_empty)

"""What every JSON endpoint shares: reading a bounded JSON body, and errors that say what is wrong."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def read_body(request: HttpRequest, max_bytes: int) -> bytes:
    """The raw body, refused with 413 before it is read when it says it is too large."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > max_bytes:
        raise BadRequest(f"body is larger than {max_bytes} bytes", 413)
    body = request.body
    if len(body) > max_bytes:
        raise BadRequest(f"body is larger than {max_bytes} bytes", 413)
    return body


def parse_json(body: bytes, allow_empty: bool = False) -> Any:
    if allow_empty and not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as problem:
        raise BadRequest(f"body is not valid JSON: {problem}") from None


def read_json(request: HttpRequest, max_bytes: int, allow_empty: bool = False) -> Any:
    return parse_json(read_body(request, max_bytes), allow_empty)

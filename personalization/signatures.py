"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<raw body>", sent as X-MRDJ-Signature: v1=<hex>.

The timestamp is part of what is signed, so a captured request cannot be replayed
once it is more than TOLERANCE_SECONDS old.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from mrdj.api import ascii_digits

TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """Why a request is not accepted as coming from the website; safe to show the caller."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(secret: str, timestamp: str, signature: str, body: bytes, now: float | None = None) -> None:
    """Raise SignatureError unless signature (one or more comma-separated v1= values) signs body."""
    if not timestamp or not signature:
        raise SignatureError("X-MRDJ-Timestamp and X-MRDJ-Signature are required")
    if not ascii_digits(timestamp, max_length=12):
        raise SignatureError("X-MRDJ-Timestamp must be a Unix time in seconds")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise SignatureError(f"X-MRDJ-Timestamp is more than {TOLERANCE_SECONDS // 60} minutes from now")
    expected = sign(secret, timestamp, body).encode()
    given = [part.strip().encode() for part in signature.split(",")]
    # Every candidate is compared in constant time (several allow a secret to be rotated).
    if not any([hmac.compare_digest(expected, candidate) for candidate in given]):
        raise SignatureError("X-MRDJ-Signature does not match the body")

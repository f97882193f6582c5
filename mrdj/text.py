"""Text a person or a client typed, checked before it is stored: what PostgreSQL refuses (NUL,
lone surrogates) and what breaks a one-line field (line and paragraph separators, control
and invisible format characters). Each returns the problem in words, or "" when fine."""

from __future__ import annotations

import unicodedata

MULTILINE_ALLOWED = frozenset("\n\r\t")


def one_line_problem(text: str) -> str:
    for character in text:
        if unicodedata.category(character) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return f"one line, without control or invisible characters (found U+{ord(character):04X})"
    return ""


def text_problem(text: str) -> str:
    """For free text of several lines: line breaks and tabs are fine, other controls are not."""
    for character in text:
        if character not in MULTILINE_ALLOWED and unicodedata.category(character) in ("Cc", "Cs"):
            return f"without control characters (found U+{ord(character):04X})"
    return ""

"""Untrusted text made safe to show on a console, in an email header or a log line."""

from __future__ import annotations

import unicodedata

from app.events import CONTROL_CHARACTER


def escape_control(text: str) -> str:
    """`text` with each control character written as an escape, e.g. ESC as \\x1b, and each
    invisible format character (Unicode category Cf: bidi overrides such as U+202E, zero-width
    spaces) as \\u202e: a terminal escape sequence in a product id must never reach the console
    raw, nor a character that reverses or hides what the console shows."""
    text = CONTROL_CHARACTER.sub(lambda found: f"\\x{ord(found.group()):02x}", text)
    if text.isascii():
        return text
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cf" else c for c in text)

"""Text from strangers, made safe to show: control characters become visible escapes.

A job's progress notes, log lines and error reasons, and its worker log, are written by
buyer code. Printed raw, an escape sequence in them can rewrite the user's terminal (clear
the screen, move the cursor, set the clipboard through OSC 52) or reorder what a reader
sees (bidirectional overrides). `safe_text` keeps newlines and tabs and turns every other
control character into a `\\xNN` / `\\uNNNN` escape a person can read; `safe_line` also
folds line breaks, for one-line fields (a progress note, a failure reason, a status).
Pure functions; any thread.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls (0x9B is a one-byte CSI on some
# terminals), Unicode line/paragraph separators, bidirectional embeddings, overrides and
# isolates (Trojan-Source style reordering), and the byte-order mark in mid-text.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\ufeff]")
_CR = re.compile(r"\r\n?")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def safe_text(text: str, *, max_chars: int | None = None) -> str:
    """`text` with newlines and tabs kept (a lone CR or CRLF becomes a newline) and every
    other control character shown as an escape; cut to `max_chars` first when given."""
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars]
    return _UNSAFE.sub(_escape, _CR.sub("\n", text))


def safe_line(text: str, *, max_chars: int | None = None) -> str:
    """One line: like `safe_text`, with line breaks and tabs folded into single spaces."""
    return " ".join(safe_text(text, max_chars=max_chars).split())


def has_unsafe(text: str) -> bool:
    """Whether `text` holds a character `safe_text` would escape (CR included)."""
    return bool(_UNSAFE.search(text)) or "\r" in text

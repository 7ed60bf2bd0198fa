"""Text that comes from outside (client names, client ids, URLs, tool names) shown safely.

Control characters can end a log line and start a forged one; bidirectional overrides and
isolates reorder what a terminal or a page shows around them, so that `exe.txt` reads as
`txt.exe`. `escaped` writes such text so that every character is visible for what it is.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BIDI_CONTROLS", "escaped", "is_plain"]

BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""The bidirectional marks, embeddings, overrides and isolates of Unicode."""

_MAX_LENGTH: Final = 512


def is_plain(text: str) -> bool:
    """Whether `text` is printable and has no bidirectional control: safe to show as it is.

    Every bidirectional control is of Unicode category Cf, which `str.isprintable` already
    refuses, so one C-level scan decides.
    """
    return text.isprintable()


def escaped(value: object, *, limit: int | None = _MAX_LENGTH) -> str:
    """`value` as text with every non-printable or bidirectional character escaped
    (``\\n``, ``\\x1b``, ``\\u202e``), and cut to `limit` characters with ``…``."""
    text = value if isinstance(value, str) else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    if is_plain(text):
        return text
    return "".join(
        char
        if char.isprintable() and char not in BIDI_CONTROLS
        else char.encode("unicode_escape").decode("ascii")
        for char in text
    )

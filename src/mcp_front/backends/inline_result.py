"""How an inline tool's outcome becomes a `CallToolResult`, with the tool's secrets taken out."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

REDACTED: Final = "…"
MIN_SECRET_LENGTH: Final = 4
"""Shorter values would blank out ordinary text wherever it matched, and hide nothing."""

TAIL_CHARACTERS: Final = 2000


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every configured secret value replaced, longest first."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def tail(text: str, limit: int = TAIL_CHARACTERS) -> str:
    text = text.strip()
    return text if len(text) <= limit else REDACTED + text[-limit:]


def decode(data: bytes, encoding: str | None = None) -> str:
    try:
        return data.decode(encoding or "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def error_result(message: str, secrets: Iterable[str] = ()) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": redact(message, secrets)}], "isError": True}


def output_result(text: str, secrets: Iterable[str] = (), *, truncated: bool = False) -> dict[str, Any]:
    """A successful call's output as text content, and as structured content if a JSON object."""
    text = redact(text, secrets)
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": False}
    if truncated:
        # Cut JSON is no longer the tool's object: it is passed on only as text.
        result["content"].append({"type": "text", "text": "(output truncated)"})
        return result
    try:
        structured = json.loads(text)
    except (ValueError, RecursionError):
        return result
    if isinstance(structured, dict):
        result["structuredContent"] = structured
    return result

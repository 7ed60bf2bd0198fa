"""How an inline tool's outcome becomes a `CallToolResult`, with the tool's secrets taken out."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import quote

REDACTED: Final = "…"
MIN_SECRET_LENGTH: Final = 4
"""Shorter values would blank out ordinary text wherever it matched, and hide nothing."""

TAIL_CHARACTERS: Final = 2000


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Each secret as it may appear in output: as is, JSON-escaped and percent-encoded; longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET_LENGTH:
            continue
        forms.update(
            (
                secret,
                json.dumps(secret)[1:-1],
                json.dumps(secret, ensure_ascii=False)[1:-1],
                quote(secret, safe=""),
            )
        )
    return sorted(forms, key=len, reverse=True)


def redaction_margin(secrets: Iterable[str]) -> int:
    """How many bytes past a cut a secret's form can reach: capture this much more, redact, then cut."""
    return max((len(form.encode()) for form in secret_forms(secrets)), default=0)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every configured secret value (in each of its forms) replaced, longest first."""
    for form in secret_forms(secrets):
        text = text.replace(form, REDACTED)
    return text


def cut(text: str, limit: int) -> str:
    """The start of `text` that fits in `limit` UTF-8 bytes; only for text already redacted."""
    encoded = text.encode("utf-8", errors="surrogatepass")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def clean(data: bytes, secrets: Iterable[str], limit: int, encoding: str | None = None) -> str:
    """Captured output as text: decoded and redacted as a whole, and only then cut to `limit` bytes."""
    return cut(redact(decode(data, encoding), secrets), limit)


def tail(text: str, secrets: Iterable[str] = (), limit: int = TAIL_CHARACTERS) -> str:
    """The end of `text`, redacted before it is cut so that no part of a secret survives the cut."""
    text = redact(text, secrets).strip()
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

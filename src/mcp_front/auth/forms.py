"""Reading request bodies, `application/x-www-form-urlencoded` forms and query strings, within bounds.

Every endpoint of the authorization server that takes a form (`/authorize`, the consent
form, `/token`, `/revoke`) reads it here: the body is read up to `max_body` bytes and no
further (413 beyond, also when a `Content-Length` announces more), a client that stops
sending is not waited for, and the number of fields is bounded, so no unauthenticated
request can make the gateway buffer or parse more than a few kilobytes.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

from mcp_front.auth.errors import OAuthError, invalid_request

__all__ = ["DEFAULT_MAX_BODY", "FORM_MEDIA_TYPE", "MAX_FIELDS", "read_body", "read_query", "read_urlencoded"]

DEFAULT_MAX_BODY: Final = 16 * 1024
"""Largest form body or query string the endpoints read, in bytes."""
MAX_FIELDS: Final = 32
FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"


def _too_large() -> OAuthError:
    return invalid_request("request body too large", status=413)


async def read_urlencoded(request: Request, *, max_body: int = DEFAULT_MAX_BODY) -> list[tuple[str, str]]:
    """The fields of a form POST, in order, repeated names kept.

    Raises `OAuthError`: 405 for another method, 400 for another content type or a body
    that is not a well-formed form, 413 past `max_body`.
    """
    if request.method != "POST":
        raise OAuthError("invalid_request", "use POST", 405, {"Allow": "POST"})
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise invalid_request(f"the body must be {FORM_MEDIA_TYPE}")
    return _parse(await read_body(request, max_body=max_body))


async def read_body(request: Request, *, max_body: int = DEFAULT_MAX_BODY) -> bytes:
    """The request's body, read up to `max_body` bytes and no further.

    Raises `OAuthError`: 413 past `max_body` (also when `Content-Length` announces more),
    400 when the client goes away before sending it all.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_body):
        raise _too_large()
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                raise _too_large()
    except ClientDisconnect:
        raise invalid_request("request body incomplete") from None
    return bytes(body)


def read_query(request: Request, *, max_length: int = DEFAULT_MAX_BODY) -> list[tuple[str, str]]:
    """The fields of the request's query string, in order; 413 past `max_length` bytes."""
    raw: bytes = request.scope.get("query_string", b"")
    if len(raw) > max_length:
        raise _too_large()
    return _parse(raw)


def _parse(raw: bytes) -> list[tuple[str, str]]:
    try:
        text = raw.decode("ascii")
        return parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise invalid_request(f"not a well-formed form of at most {MAX_FIELDS} fields") from None

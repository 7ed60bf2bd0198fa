"""Making an HTTP tool's request: the configured call, with the arguments filled in.

The server is the one the configuration names (placeholders cannot reach the scheme or
host, and redirects are not followed). The request carries only the configured headers:
the client's `Authorization` and `Cookie` never reach this layer, and the shared client
keeps no cookies, so one user's call cannot ride on a cookie another user's call received.
"""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import urlsplit

import anyio
import httpx2

from mcp_front.backends.http_client import backend_client
from mcp_front.backends.inline_arguments import (
    ArgumentRefused,
    Arguments,
    as_text,
    http_headers,
    http_url,
    json_body,
)
from mcp_front.backends.inline_result import clean, error_result, output_result, redaction_margin, tail
from mcp_front.config.models.inline import InlineHttpCall, placeholders

MAX_RESPONSE_BYTES: Final = 1024 * 1024


def http_client() -> httpx2.AsyncClient:
    """The pooled client HTTP tools share: no redirects, no cookie jar."""
    return backend_client(timeout=httpx2.Timeout(10.0, read=None))


def build_request(
    client: httpx2.AsyncClient, call: InlineHttpCall, arguments: Arguments, secrets: list[str]
) -> httpx2.Request:
    """The request for one call; `ArgumentRefused` if an argument cannot go where it is put."""
    headers = http_headers(call.headers, arguments, secrets)
    in_url = placeholders(call.url)
    try:
        url = httpx2.URL(http_url(call.url, arguments))
        if call.body is None and call.method == "GET":
            query = _query_arguments(call, arguments, url)
            in_url = [*in_url, *query]
            # Merged with the query the configuration wrote; `params=` would replace it.
            url = url.copy_merge_params(query)
            return client.build_request(call.method, url, headers=headers)
    except httpx2.InvalidURL as exc:
        raise ArgumentRefused(f"{_culprit(arguments, in_url)} make the URL invalid: {exc}") from exc
    body = dict(arguments) if call.body is None else json_body(call.body, arguments)
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        return client.build_request(call.method, url, headers=headers, content=content)
    except (httpx2.InvalidURL, UnicodeError) as exc:
        raise ArgumentRefused(f"the arguments cannot be sent: {exc}") from exc


def _query_arguments(call: InlineHttpCall, arguments: Arguments, url: httpx2.URL) -> dict[str, str]:
    """The arguments a GET tool adds to the query: those no placeholder of the call used.

    None may replace a parameter the configured URL sets (`scope=public`, `limit=10`).
    """
    used = set(placeholders(call.url))
    for value in call.headers.values():
        if isinstance(value, str):
            used.update(placeholders(value))
    query: dict[str, str] = {}
    for name, value in arguments.items():
        if name in used:
            continue
        if name in url.params:
            raise ArgumentRefused(
                f'argument "{name}" would replace the query parameter "{name}" the tool\'s URL sets'
            )
        query[name] = as_text(value)
    return query


def _culprit(arguments: Arguments, names: list[str]) -> str:
    """Names the argument most likely to blame for a URL that cannot be built: the longest."""
    present = [name for name in dict.fromkeys(names) if name in arguments]
    if not present:
        return "the arguments"
    longest = max(present, key=lambda name: len(as_text(arguments[name])))
    return f'argument "{longest}" would'


async def call_http(
    client: httpx2.AsyncClient,
    request: httpx2.Request,
    *,
    time_limit: float,
    secrets: list[str],
    response_limit: int = MAX_RESPONSE_BYTES,
) -> dict[str, Any]:
    """Send the request and shape the answer as a tool result."""
    origin = _origin(str(request.url))
    try:
        with anyio.fail_after(time_limit):
            response = await client.send(request, stream=True)
            try:
                body, truncated = await _read(response, response_limit, redaction_margin(secrets))
            finally:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
    except TimeoutError:
        return error_result(f"the request to {origin} did not finish within {time_limit:g}s", secrets)
    except httpx2.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return error_result(f"the request to {origin} failed: {reason}", secrets)
    # Redacted as a whole before anything is cut, so no part of a secret survives a cut.
    text = clean(body, secrets, response_limit, response.charset_encoding)
    status = response.status_code
    if 300 <= status < 400:
        return error_result(f"{origin} answered with a redirect (HTTP {status}), which is not followed")
    if status >= 400:
        detail = tail(text, secrets)
        message = f"{origin} answered HTTP {status} {response.reason_phrase}".rstrip()
        return error_result(f"{message}: {detail}" if detail else message, secrets)
    return output_result(text, secrets, truncated=truncated)


async def _read(response: httpx2.Response, limit: int, margin: int) -> tuple[bytes, bool]:
    """Up to `limit` + `margin` bytes of the body, and whether it had more than `limit`.

    The margin lets a secret that straddles the limit be redacted before the body is cut.
    """
    keep = limit + margin
    body = bytearray()
    seen = 0
    async for chunk in response.aiter_bytes():
        seen += len(chunk)
        body += chunk[: max(0, keep - len(body))]
        if seen > keep:
            break
    return bytes(body), seen > limit


def _origin(url: str) -> str:
    """Where a request went, without credentials, path or query (which may hold arguments)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

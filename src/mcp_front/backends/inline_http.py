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
from mcp_front.backends.inline_arguments import Arguments, as_text, http_headers, http_url, json_body
from mcp_front.backends.inline_result import decode, error_result, output_result, tail
from mcp_front.config.models.inline import InlineHttpCall

MAX_RESPONSE_BYTES: Final = 1024 * 1024


def http_client() -> httpx2.AsyncClient:
    """The pooled client HTTP tools share: no redirects, no cookie jar."""
    return backend_client(timeout=httpx2.Timeout(10.0, read=None))


def build_request(
    client: httpx2.AsyncClient, call: InlineHttpCall, arguments: Arguments, secrets: list[str]
) -> httpx2.Request:
    """The request for one call; `ArgumentRefused` if an argument cannot go where it is put."""
    url = httpx2.URL(http_url(call.url, arguments))
    headers = http_headers(call.headers, arguments, secrets)
    if call.body is None and call.method == "GET":
        # Merged with the query the configuration wrote; `params=` would replace it.
        url = url.copy_merge_params({name: as_text(value) for name, value in arguments.items()})
        return client.build_request(call.method, url, headers=headers)
    body = dict(arguments) if call.body is None else json_body(call.body, arguments)
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return client.build_request(call.method, url, headers=headers, content=content)


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
                body, truncated = await _read(response, response_limit)
            finally:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
    except TimeoutError:
        return error_result(f"the request to {origin} did not finish within {time_limit:g}s", secrets)
    except httpx2.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return error_result(f"the request to {origin} failed: {reason}", secrets)
    text = decode(body, response.charset_encoding)
    status = response.status_code
    if 300 <= status < 400:
        return error_result(f"{origin} answered with a redirect (HTTP {status}), which is not followed")
    if status >= 400:
        detail = tail(text)
        message = f"{origin} answered HTTP {status} {response.reason_phrase}".rstrip()
        return error_result(f"{message}: {detail}" if detail else message, secrets)
    return output_result(text, secrets, truncated=truncated)


async def _read(response: httpx2.Response, limit: int) -> tuple[bytes, bool]:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        room = limit - len(body)
        if len(chunk) > room:
            body += chunk[:room]
            return bytes(body), True
        body += chunk
    return bytes(body), False


def _origin(url: str) -> str:
    """Where a request went, without credentials, path or query (which may hold arguments)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

"""HTTP plumbing shared by the front transports: bodies, errors, origins, event streams."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import urlsplit

import anyio
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Send

from mcp_front.backends.base import BackendError
from mcp_front.errors import MCPFrontError
from mcp_front.protocol import jsonrpc
from mcp_front.protocol.jsonrpc import Message, RequestId

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
PING_INTERVAL: Final = 15.0
SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]
PING_EVENT: Final = b": ping\n\n"


class BodyTooLarge(MCPFrontError):
    pass


async def read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read a request body, refusing it as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def rpc_error(
    status: int,
    code: int,
    message: str,
    *,
    request_id: RequestId | None = None,
    headers: dict[str, str] | None = None,
    data: Any = None,
) -> Response:
    """An HTTP error whose body is a JSON-RPC error, as MCP clients expect."""
    body = jsonrpc.encode(jsonrpc.error_response(request_id, code, message, data))
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def backend_unavailable(error: BackendError, *, request_id: RequestId | None = None) -> Response:
    """The gateway could not open a session: 502 for a backend it could not reach, or the
    error's own status (403 for a caller policy refuses)."""
    return rpc_error(error.status, error.code, error.message, request_id=request_id)


def json_message(message: Message, headers: dict[str, str] | None = None) -> Response:
    return Response(jsonrpc.encode(message), media_type="application/json", headers=headers)


def sse_event(message: Message, event: str = "message") -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + jsonrpc.encode(message) + b"\n\n"


def media_types(header: str | None) -> set[str]:
    if not header:
        return set()
    return {part.split(";", 1)[0].strip().lower() for part in header.split(",")}


def accepts(headers: Headers, *wanted: str) -> bool:
    """Whether the Accept header admits every wanted type (wildcards count)."""
    offered = media_types(headers.get("accept"))
    if "*/*" in offered:
        return True
    for media_type in wanted:
        major = media_type.split("/", 1)[0]
        if media_type not in offered and f"{major}/*" not in offered:
            return False
    return True


def prefers_event_stream(headers: Headers) -> bool:
    """Whether the client would rather have an event stream than a JSON body.

    Quality values decide; on a tie, the type the client listed first wins.
    """
    ranked: dict[str, tuple[float, int]] = {}
    for position, part in enumerate((headers.get("accept") or "").split(",")):
        media_type, *parameters = (p.strip() for p in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.setdefault(media_type.lower(), (quality, position))
    stream = ranked.get("text/event-stream", (0.0, 0))
    json_body = ranked.get("application/json", (0.0, 0))
    return stream[0] > json_body[0] or (stream[0] == json_body[0] > 0 and stream[1] < json_body[1])


def is_json_content(headers: Headers) -> bool:
    return media_types(headers.get("content-type")) == {"application/json"}


class OriginPolicy:
    """Refuses browser requests from origins that are not ours or explicitly allowed.

    Requests without an Origin header come from non-browser clients, which DNS
    rebinding and cross-site requests cannot forge, so they pass.
    """

    def __init__(self, allowed: Iterable[str]) -> None:
        self._allowed = frozenset(_normalise_origin(o) for o in allowed)

    def allows(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin is None:
            return True
        return _normalise_origin(origin) in self._allowed


def _normalise_origin(origin: str) -> str:
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    default_port = {"http": 80, "https": 443}.get(scheme)
    try:
        port = parts.port
    except ValueError:
        return origin
    if port is None or port == default_port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


async def read_message(request: Request) -> tuple[Message | None, Response | None]:
    """The one JSON-RPC message a POST carries, or the error response saying why there is none."""
    if not is_json_content(request.headers):
        return None, rpc_error(
            415, jsonrpc.INVALID_REQUEST, "Unsupported Media Type: Content-Type must be application/json"
        )
    try:
        body = await read_body(request.receive)
    except BodyTooLarge:
        return None, rpc_error(
            413, jsonrpc.INVALID_REQUEST, f"Payload Too Large: the limit is {MAX_BODY_BYTES} bytes"
        )
    return parse_message(body)


def parse_message(body: bytes) -> tuple[Message | None, Response | None]:
    """Decode one JSON-RPC message, or the 400 response that says what is wrong with it."""
    try:
        value = jsonrpc.decode(body)
    except ValueError:
        return None, rpc_error(400, jsonrpc.PARSE_ERROR, "Parse error: the body is not valid JSON")
    try:
        jsonrpc.classify(value)
    except jsonrpc.InvalidMessage as exc:
        request_id = value.get("id") if isinstance(value, dict) else None
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            request_id = None
        return None, rpc_error(400, jsonrpc.INVALID_REQUEST, f"Invalid request: {exc}", request_id=request_id)
    assert isinstance(value, dict)
    return value, None


async def cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel a streaming response's work when its client goes away."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def cancel_on_event(event: anyio.Event, scope: anyio.CancelScope) -> None:
    """Cancel a streaming response's work when its session ends."""
    await event.wait()
    scope.cancel()


async def end_stream(send: Send) -> None:
    """Close an event stream whose work was cancelled; its client may already be gone."""
    with contextlib.suppress(OSError):
        await send({"type": "http.response.body", "body": b"", "more_body": False})

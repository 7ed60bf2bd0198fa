"""2026-07-28 requests sent to a streamable-HTTP backend as they are: one POST each, no session.

A modern request is self-contained, so a backend that speaks the era gets it natively:
the client's body with its envelope in `params._meta` (the backend needs it), no
`Mcp-Session-Id`, and the routing headers the era requires (`MCP-Protocol-Version`,
`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`). The headers are derived from the body here,
never copied from the client: the backend routes and checks on them, so they must say
what the body says. `Mcp-Param-*` headers need the called tool's `inputSchema`; it comes
from the `tools/list` results this upstream carries, and a call that names a tool not
seen yet lists once first.

`ModernRequests` sends a modern message down only after the backend's `server/discover`
listed the request's version, and it goes through the service's governed upstream
(audit, policy, tool filter) like any other request. The answer comes back as the
backend gave it, JSON or an event stream whose notifications go to `related`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from weakref import WeakKeyDictionary

import anyio
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
    find_invalid_x_mcp_header,
    mcp_param_headers,
    x_mcp_header_map,
)
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_front.backends import http11
from mcp_front.backends.base import BackendError, MessageSink
from mcp_front.backends.event_stream import EventStreamTooLarge, events
from mcp_front.transports import jsonrpc
from mcp_front.transports.jsonrpc import Message, MessageKind

if TYPE_CHECKING:
    from mcp_front.backends.streamable_http import StreamableHTTPUpstream

logger = logging.getLogger("mcp_front.backends.streamable_http")

ENVELOPE_KEYS: Final = (PROTOCOL_VERSION_META_KEY, CLIENT_INFO_META_KEY, CLIENT_CAPABILITIES_META_KEY)
LIST_PAGE_CAP: Final = 20
"""Pages of `tools/list` read to find one tool's schema; a backend with more is not searched further."""

HeaderMap = dict[tuple[str, ...], str]
Exchange = Callable[[Message], Awaitable[Message]]


def modern_version(message: Message) -> str | None:
    """The 2026-07-28-era protocol version a request's envelope names, or `None`."""
    params = message.get("params")
    if not isinstance(params, dict):
        return None
    meta = params.get("_meta")
    version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
    return version if isinstance(version, str) and version in MODERN_PROTOCOL_VERSIONS else None


def is_modern(message: Message) -> bool:
    return modern_version(message) is not None


def envelope(message: Message) -> dict[str, Any]:
    """The envelope keys of a modern request's `_meta`, for requests the gateway sends on its behalf."""
    meta = (message.get("params") or {}).get("_meta") or {}
    return {key: meta[key] for key in ENVELOPE_KEYS if key in meta}


class ToolSchemas:
    """The `inputSchema` of each tool the listings of one channel showed.

    A complete listing (no cursor asked, none returned) replaces what was known, so a
    tool the backend dropped is forgotten; a page only adds.
    """

    def __init__(self) -> None:
        self._schemas: dict[str, Any] = {}
        self._header_maps: dict[str, HeaderMap] = {}

    def knows(self, name: str) -> bool:
        return name in self._schemas

    def schema(self, name: str) -> Any:
        return self._schemas.get(name)

    def header_map(self, name: str) -> HeaderMap:
        return self._header_maps.get(name, {})

    def absorb(self, request: Message, response: Message) -> None:
        result = response.get("result")
        tools = result.get("tools") if isinstance(result, dict) else None
        if not isinstance(tools, list):
            return
        schemas: dict[str, Any] = {}
        header_maps: dict[str, HeaderMap] = {}
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                continue
            schema = tool.get("inputSchema")
            schemas[tool["name"]] = schema
            # An invalid annotation mirrors nothing: conforming clients drop the tool, and
            # servers validate no header for it.
            if find_invalid_x_mcp_header(schema) is None:
                header_maps[tool["name"]] = x_mcp_header_map(schema)
        assert isinstance(result, dict)
        asked_cursor = "cursor" in (request.get("params") or {})
        if not asked_cursor and not isinstance(result.get("nextCursor"), str):
            self._schemas, self._header_maps = schemas, header_maps
        else:
            self._schemas.update(schemas)
            self._header_maps.update(header_maps)


async def list_tools(exchange: Exchange, meta: Mapping[str, Any], tools: ToolSchemas) -> None:
    """Read the backend's `tools/list` into `tools`, page after page, through `exchange`."""
    cursor: str | None = None
    seen: set[str] = set()
    for page in range(LIST_PAGE_CAP):
        params: dict[str, Any] = {"_meta": dict(meta)} if meta else {}
        if cursor is not None:
            params["cursor"] = cursor
        request = {
            "jsonrpc": "2.0",
            "id": f"mcp-front-tools-{page}",
            "method": "tools/list",
            "params": params,
        }
        response = await exchange(request)
        tools.absorb(request, response)
        result = response.get("result")
        cursor = result.get("nextCursor") if isinstance(result, dict) else None
        if not isinstance(cursor, str) or cursor in seen:
            return
        seen.add(cursor)


_tools: WeakKeyDictionary[StreamableHTTPUpstream, ToolSchemas] = WeakKeyDictionary()


async def request(upstream: StreamableHTTPUpstream, message: Message, related: MessageSink) -> Message:
    """Send one modern request natively and return the backend's response to it."""
    tools = _tools.setdefault(upstream, ToolSchemas())
    headers = await _routing_headers(upstream, tools, message)
    response = await _exchange(upstream, message, headers, related)
    if message["method"] == "tools/list":
        tools.absorb(message, response)
    return response


async def _routing_headers(
    upstream: StreamableHTTPUpstream, tools: ToolSchemas, message: Message
) -> dict[str, str]:
    method = message["method"]
    params = message.get("params") or {}
    headers = {MCP_PROTOCOL_VERSION_HEADER: modern_version(message) or "", MCP_METHOD_HEADER: method}
    name_key = NAME_BEARING_METHODS.get(method)
    if name_key is not None and isinstance(named := params.get(name_key), str):
        headers[MCP_NAME_HEADER] = encode_header_value(named)
    name, arguments = params.get("name"), params.get("arguments")
    if method == "tools/call" and isinstance(name, str) and isinstance(arguments, dict) and arguments:
        if not tools.knows(name):
            await _list_natively(upstream, tools, message)
        headers.update(mcp_param_headers(tools.header_map(name), arguments))
    return headers


async def _list_natively(upstream: StreamableHTTPUpstream, tools: ToolSchemas, message: Message) -> None:
    async def exchange(listing: Message) -> Message:
        return await _exchange(upstream, listing, await _routing_headers(upstream, tools, listing), _ignore)

    try:
        await list_tools(exchange, envelope(message), tools)
    except BackendError as exc:
        # The call goes on without Mcp-Param headers; a backend that needs them says so.
        logger.info("service %s: tools/list for Mcp-Param headers failed: %s", upstream.service, exc)


async def _exchange(
    upstream: StreamableHTTPUpstream, message: Message, routing: Mapping[str, str], related: MessageSink
) -> Message:
    # The upstream's own request building and pool: the service's configured headers,
    # and no Mcp-Session-Id, since a native upstream never opens a backend session.
    outgoing = await upstream._build("POST", message, extra=tuple(routing.items()))
    try:
        with anyio.fail_after(upstream._timeout):
            # Leaving this block before the answer is read (the client went away) drops
            # the connection, which is how this era cancels a request at the backend.
            async with upstream._send(outgoing) as response:
                return await _read_answer(upstream, response, message["id"], related)
    except TimeoutError:
        raise BackendError(
            f"service '{upstream.service}' did not answer {message['method']} within {upstream._timeout:g}s",
            code=jsonrpc.REQUEST_TIMEOUT,
        ) from None


async def _read_answer(
    upstream: StreamableHTTPUpstream, response: http11.Response, request_id: Any, related: MessageSink
) -> Message:
    service = upstream.service
    media_type = response.media_type
    if media_type == "application/json":
        answer = _response_to(await response.aread(), request_id)
        # Errors of this era come with a 4xx status and are still the answer.
        if answer is not None:
            return answer
        await upstream._check_status(response)
        raise BackendError(f"service '{service}' answered with a message that is not the response")
    await upstream._check_status(response)
    if media_type != "text/event-stream":
        raise BackendError(
            f"service '{service}' is not an MCP streamable-HTTP server: it answered with "
            f"content type {media_type or '(none)'}"
        )
    try:
        async for event in events(response.aiter_bytes()):
            if event.event != "message" or not event.data:
                continue
            try:
                message = jsonrpc.decode(event.data)
                kind = jsonrpc.classify(message)
            except ValueError:
                logger.warning("service %s sent an event that is not a JSON-RPC message; ignored", service)
                continue
            if kind is MessageKind.RESPONSE:
                if message["id"] == request_id:
                    return dict(message)
            elif kind is MessageKind.NOTIFICATION:
                await related(message)
            else:
                logger.debug(
                    "service %s sent a %s request in 2026-07-28; dropped", service, message["method"]
                )
    except EventStreamTooLarge:
        raise BackendError(f"service '{service}' sent an event stream that is too large") from None
    raise BackendError(f"service '{service}' closed its event stream before answering")


def _response_to(body: bytes, request_id: Any) -> Message | None:
    try:
        message = jsonrpc.decode(body)
        kind = jsonrpc.classify(message)
    except ValueError:
        return None
    if kind is MessageKind.RESPONSE and message["id"] == request_id:
        return dict(message)
    return None


async def _ignore(message: Message) -> None:
    return None

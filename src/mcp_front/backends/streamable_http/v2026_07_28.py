"""2026-07-28 requests sent to a streamable-HTTP backend as they are: one POST each, no session.

A 2026-07-28 request is self-contained, so a backend that speaks the revision gets it
natively: the client's body with its envelope in `params._meta` (the backend needs it),
no `Mcp-Session-Id`, and the routing headers the revision requires
(`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`). The headers are
derived from the body here, never copied from the client: the backend routes and checks
on them, so they must say what the body says. `Mcp-Param-*` headers need the called
tool's `inputSchema`; it comes from the `tools/list` results this channel carries, and a
call that names a tool not seen yet lists once first.

The front's `SelfContainedRequests` sends a request down natively only after the
backend's `server/discover` listed its version, and through the service's governed
upstream (audit, policy, tool filter) like any other request. The answer comes back as
the backend gave it, JSON or an event stream whose notifications go to `related`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import anyio
from mcp.shared.inbound import NAME_BEARING_METHODS, encode_header_value, mcp_param_headers

from mcp_front.backends.base import BackendError, MessageSink
from mcp_front.backends.streamable_http import http11
from mcp_front.backends.streamable_http.channel import HTTPChannel
from mcp_front.backends.streamable_http.event_stream import EventStreamTooLarge, events
from mcp_front.protocol import headers, jsonrpc
from mcp_front.protocol.jsonrpc import Message, MessageKind
from mcp_front.protocol.revisions import envelope, envelope_version
from mcp_front.protocol.tool_schemas import ToolSchemas, list_tools

logger = logging.getLogger("mcp_front.backends.streamable_http")


class NativeRequests:
    """Sends a session's 2026-07-28 requests natively over its channel."""

    def __init__(self, channel: HTTPChannel) -> None:
        self._channel = channel
        self.tools = ToolSchemas()
        """The tools' schemas, from the listings that passed through, for `Mcp-Param-*` headers."""

    async def request(self, message: Message, related: MessageSink) -> Message:
        """Send one request natively and return the backend's response to it."""
        routing = await self._routing_headers(message)
        response = await self._exchange(message, routing, related)
        if message["method"] == "tools/list":
            self.tools.absorb(message, response)
        return response

    async def _routing_headers(self, message: Message) -> dict[str, str]:
        method = message["method"]
        params = message.get("params") or {}
        routing = {headers.PROTOCOL_VERSION: envelope_version(message) or "", headers.METHOD: method}
        name_key = NAME_BEARING_METHODS.get(method)
        if name_key is not None and isinstance(named := params.get(name_key), str):
            routing[headers.NAME] = encode_header_value(named)
        name, arguments = params.get("name"), params.get("arguments")
        if method == "tools/call" and isinstance(name, str) and isinstance(arguments, dict) and arguments:
            if not self.tools.knows(name):
                await self._list_tools(message)
            routing.update(mcp_param_headers(self.tools.header_map(name), arguments))
        return routing

    async def _list_tools(self, message: Message) -> None:
        async def exchange(listing: Message) -> Message:
            return await self._exchange(listing, await self._routing_headers(listing), _ignore)

        try:
            await list_tools(exchange, envelope(message), self.tools)
        except BackendError as exc:
            # The call goes on without Mcp-Param headers; a backend that needs them says so.
            logger.info("service %s: tools/list for Mcp-Param headers failed: %s", self._channel.service, exc)

    async def _exchange(self, message: Message, routing: Mapping[str, str], related: MessageSink) -> Message:
        channel = self._channel
        # The channel's own request building and pool: the service's configured headers,
        # and no Mcp-Session-Id, since a native channel never opens a backend session.
        outgoing = await channel.build("POST", message, extra=tuple(routing.items()))
        try:
            with anyio.fail_after(channel.timeout):
                # Leaving this block before the answer is read (the client went away) drops
                # the connection, which is how this revision cancels a request at the backend.
                async with channel.send(outgoing) as response:
                    return await self._read_answer(response, message["id"], related)
        except TimeoutError:
            raise BackendError(
                f"service '{channel.service}' did not answer {message['method']} within {channel.timeout:g}s",
                code=jsonrpc.REQUEST_TIMEOUT,
            ) from None

    async def _read_answer(self, response: http11.Response, request_id: Any, related: MessageSink) -> Message:
        channel = self._channel
        service = channel.service
        media_type = response.media_type
        if media_type == "application/json":
            answer = _response_to(await response.aread(), request_id)
            # Errors of this revision come with a 4xx status and are still the answer.
            if answer is not None:
                return answer
            await channel.check_status(response)
            raise BackendError(f"service '{service}' answered with a message that is not the response")
        await channel.check_status(response)
        if media_type != "text/event-stream":
            raise BackendError(
                f"service '{service}' is not an MCP streamable-HTTP server: it answered with "
                f"content type {media_type or '(none)'}"
            )
        try:
            async for event in events(response.aiter_bytes()):
                decoded = channel.decoded(event)
                if decoded is None:
                    continue
                message, kind = decoded
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

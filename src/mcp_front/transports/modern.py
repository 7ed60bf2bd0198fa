"""The 2026-07-28 protocol era on `/<service>/mcp`: self-contained requests, no handshake.

A modern request carries its protocol version, client info and capabilities in
`params._meta` and needs no session. Backends still speak the handshake era, so
each (principal, service) gets one shared upstream that the gateway initialises
itself; requests are forwarded with their envelope removed, and results come back
in the shape the 2026-07-28 wire requires. There is no back channel in this era:
a backend's request to the client is answered with an error.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from typing import Any, Final

import anyio
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
)
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.jsonrpc import HEADER_MISMATCH
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.responses import Response

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError, MessageSink, Upstream
from mcp_front.transports import http, jsonrpc
from mcp_front.transports.jsonrpc import Message, MessageKind
from mcp_front.transports.session import UpstreamOpener

logger = logging.getLogger("mcp_front.transports")

ENVELOPE_KEYS: Final = frozenset(
    {PROTOCOL_VERSION_META_KEY, CLIENT_INFO_META_KEY, CLIENT_CAPABILITIES_META_KEY}
)
CACHEABLE_METHODS: Final = frozenset(
    {"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"}
)
GATEWAY_CLIENT_INFO: Final = {"name": "mcp-front", "version": "1"}


def is_modern(version: str | None) -> bool:
    return version in MODERN_PROTOCOL_VERSIONS


class _Channel:
    """One principal's shared, gateway-initialised upstream for a service."""

    def __init__(self) -> None:
        self.upstream: Upstream | None = None
        self.initialize_result: dict[str, Any] | None = None
        self.ready = anyio.Lock()
        self.in_flight: dict[int, MessageSink] = {}


class ModernRequests:
    """Serves 2026-07-28 requests for one service."""

    def __init__(self, service: str, open_upstream: UpstreamOpener) -> None:
        self.service = service
        self._open_upstream = open_upstream
        self._channels: dict[str, _Channel] = {}
        self._tokens = itertools.count(1)

    def check(self, request: Request, message: Message) -> Response | None:
        """The error response for a request whose envelope or routing headers are wrong."""
        request_id = message.get("id")
        kind = jsonrpc.classify(message)
        if kind is MessageKind.RESPONSE:
            return http.rpc_error(
                400, jsonrpc.INVALID_REQUEST, "Invalid request: clients do not send responses in 2026-07-28"
            )
        if kind is MessageKind.NOTIFICATION:
            return None
        duplicated = find_duplicated_routing_header(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.scope["headers"]
        )
        if duplicated is not None:
            return http.rpc_error(
                400, HEADER_MISMATCH, f"{duplicated} header appears more than once", request_id=request_id
            )
        verdict = classify_inbound_request(message, headers=dict(request.headers))
        if isinstance(verdict, InboundLadderRejection):
            status = ERROR_CODE_HTTP_STATUS.get(verdict.code, 400)
            return http.rpc_error(
                status, verdict.code, verdict.message, request_id=request_id, data=verdict.data
            )
        if message["method"] == "initialize":
            return http.rpc_error(
                400,
                jsonrpc.INVALID_REQUEST,
                "initialize is not part of protocol 2026-07-28; send server/discover, or drop the "
                "MCP-Protocol-Version header to use the initialize handshake",
                request_id=request_id,
            )
        return None

    async def answer(self, principal: Principal, message: Message, related: MessageSink) -> Message | None:
        """The response to one modern request (its checks already passed)."""
        request_id = message["id"]
        try:
            channel = await self._channel(principal, message)
            if message["method"] == "server/discover":
                return {"jsonrpc": "2.0", "id": request_id, "result": _discover_result(channel)}
            assert channel.upstream is not None
            forwarded, restore = self._strip_envelope(message, related)
            key = next(self._tokens)
            channel.in_flight[key] = restore
            try:
                response = await channel.upstream.request(forwarded, restore)
            finally:
                del channel.in_flight[key]
        except BackendError as exc:
            return jsonrpc.error_response(request_id, exc.code, exc.message)
        result = response.get("result")
        if isinstance(result, dict):
            response = {**response, "result": _modern_result(message["method"], result)}
        return response

    async def _channel(self, principal: Principal, message: Message) -> _Channel:
        channel = self._channels.setdefault(principal.subject, _Channel())
        async with channel.ready:
            if channel.upstream is None:
                channel.upstream = await self._open_upstream(principal, self._no_back_channel(channel))
            if channel.initialize_result is None:
                channel.initialize_result = await self._initialize(channel.upstream, message)
        return channel

    async def _initialize(self, upstream: Upstream, message: Message) -> dict[str, Any]:
        meta = message.get("params", {}).get("_meta", {})
        client_info = meta.get(CLIENT_INFO_META_KEY)
        params = {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": client_info if isinstance(client_info, dict) else GATEWAY_CLIENT_INFO,
        }
        response = await upstream.request(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}, _discard
        )
        result = response.get("result")
        if not isinstance(result, dict):
            error = response.get("error")
            detail = error.get("message") if isinstance(error, dict) else "no result"
            raise BackendError(f"service '{self.service}' failed to initialize: {detail}")
        await upstream.notify({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    def _strip_envelope(self, message: Message, related: MessageSink) -> tuple[Message, MessageSink]:
        """The request as a handshake-era backend expects it, and a sink that puts the
        client's own progress token back on the notifications that come for it.

        Progress tokens are renumbered: requests of one principal share an upstream, and
        two of them may well have picked the same token.
        """
        params = dict(message.get("params") or {})
        meta = {k: v for k, v in (params.get("_meta") or {}).items() if k not in ENVELOPE_KEYS}
        original_token = meta.get("progressToken")
        if original_token is not None:
            meta["progressToken"] = f"mcp-front-{next(self._tokens)}"
        if meta:
            params["_meta"] = meta
        else:
            params.pop("_meta", None)

        async def restore(notification: Message) -> None:
            if original_token is not None and notification.get("method") == "notifications/progress":
                notification = {
                    **notification,
                    "params": {**notification.get("params", {}), "progressToken": original_token},
                }
            await related(notification)

        return {**message, "params": params}, restore

    def _no_back_channel(self, channel: _Channel) -> MessageSink:
        async def refuse(message: Message) -> None:
            if "id" in message and channel.upstream is not None:
                await channel.upstream.respond(
                    jsonrpc.error_response(
                        message["id"],
                        jsonrpc.METHOD_NOT_FOUND,
                        "the client connected with protocol 2026-07-28, "
                        "which has no server-to-client requests",
                    )
                )
                return
            # A notification that names no request most likely concerns the only one in
            # flight (a log line written while serving it); with several, none can be chosen.
            if len(channel.in_flight) == 1:
                (sink,) = channel.in_flight.values()
                await sink(message)
            else:
                logger.debug("dropped %s: no single request stream for it", message.get("method"))

        return refuse

    async def aclose(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            if channel.upstream is not None:
                await channel.upstream.aclose()


async def _discard(message: Message) -> None:
    return None


def _discover_result(channel: _Channel) -> dict[str, Any]:
    initialized = channel.initialize_result or {}
    result: dict[str, Any] = {
        "supportedVersions": [*MODERN_PROTOCOL_VERSIONS, *reversed(HANDSHAKE_PROTOCOL_VERSIONS)],
        "capabilities": initialized.get("capabilities", {}),
        "resultType": "complete",
        "cacheScope": "private",
        "ttlMs": 0,
    }
    for key in ("serverInfo", "instructions"):
        if key in initialized:
            result[key] = initialized[key]
    return result


def _modern_result(method: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """A handshake-era result in 2026-07-28 shape: typed, and with caching directives
    where the era requires them. Results are per user, so never publicly cacheable."""
    shaped = dict(result)
    shaped.setdefault("resultType", "complete")
    if method in CACHEABLE_METHODS:
        shaped.setdefault("cacheScope", "private")
        shaped.setdefault("ttlMs", 0)
    return shaped

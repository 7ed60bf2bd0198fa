"""The 2026-07-28 protocol era on `/<service>/mcp`: self-contained requests, no handshake.

A 2026-07-28 request carries its protocol version, client info and capabilities in
`params._meta` and needs no session. Each (principal, service) gets one shared upstream,
through the service's governed layers (audit, policy, tool filter), and one of two routes:

- **native**, for a streamable-HTTP service whose backend speaks the era: the first
  request of a principal probes it with `server/discover`, and when the backend lists
  the request's version, requests go down as the client sent them (envelope included)
  and results come back as the backend gave them, `input_required` ones included. The
  upstream derives the routing headers from the body (`backends.streamable_http.v2026_07_28`).
- **handshake**, for every other backend: the gateway initialises the upstream itself,
  forwards requests with their envelope removed, and reshapes results as the era
  requires. There is no back channel here: a backend's request to the client is
  answered with an error.

Either way a `tools/call`'s `Mcp-Param-*` headers are checked against its arguments and
the tool's `inputSchema` (from the listings that pass through, or one listing when the
tool was not seen yet) before anything is forwarded; a disagreement is a 400
`HEADER_MISMATCH`. Results are per user, so none is ever publicly cacheable.
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
    validate_mcp_param_headers,
)
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY
from mcp_types.jsonrpc import HEADER_MISMATCH
from starlette.requests import Request
from starlette.responses import Response

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError, MessageSink, Upstream, UpstreamOpener
from mcp_front.protocol import headers, jsonrpc, messages
from mcp_front.protocol.jsonrpc import Message, MessageKind
from mcp_front.protocol.revisions import (
    GATEWAY_CLIENT_INFO,
    HANDSHAKE_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    SELF_CONTAINED_VERSIONS,
    envelope,
    envelope_version,
    without_envelope,
)
from mcp_front.protocol.tool_schemas import ToolSchemas, list_tools
from mcp_front.transports import http

logger = logging.getLogger("mcp_front.transports")

CACHEABLE_METHODS: Final = frozenset(
    {"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"}
)


class _Channel:
    """One principal's shared upstream for a service, and what the gateway learnt through it."""

    def __init__(self) -> None:
        self.upstream: Upstream | None = None
        self.initialize_result: dict[str, Any] | None = None
        self.native_versions: frozenset[str] | None = None
        """The versions the backend serves natively; `None` until it was asked."""
        self.ready = anyio.Lock()
        self.in_flight: dict[int, MessageSink] = {}
        self.busy = 0
        """Requests being forwarded through it now."""
        self.tools = ToolSchemas()


class SelfContainedRequests:
    """Serves 2026-07-28 requests for one service.

    `native=True` (a streamable-HTTP service) lets requests pass through natively when
    the backend speaks the era; the upstream must then accept self-contained messages.
    """

    def __init__(self, service: str, open_upstream: UpstreamOpener, *, native: bool = False) -> None:
        self.service = service
        self._open_upstream = open_upstream
        self._native = native
        self._channels: dict[Principal, _Channel] = {}
        """By the whole principal, not its key: the governance layers of a channel's
        upstream hold the principal it was opened for (groups, client id), so a caller
        whose token now says something else gets a channel of its own."""
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
            return _rejection(verdict, request_id)
        if message["method"] == "initialize":
            return http.rpc_error(
                400,
                jsonrpc.INVALID_REQUEST,
                "initialize is not part of protocol 2026-07-28; send server/discover, or drop the "
                "MCP-Protocol-Version header to use the initialize handshake",
                request_id=request_id,
            )
        return None

    async def check_arguments(
        self, principal: Principal, request: Request, message: Message
    ) -> Response | None:
        """The error response for a `tools/call` whose `Mcp-Param-*` headers disagree with
        its arguments, checked against the tool's `inputSchema` (`check` already passed).

        Whatever the backend, it never sees the client's headers: a native one gets them
        derived from the body. So a client may not route on one value and act on another.
        """
        if message["method"] != "tools/call":
            return None
        params = message.get("params") or {}
        name, arguments = params.get("name"), params.get("arguments") or {}
        if not isinstance(name, str) or not isinstance(arguments, dict):
            return None  # the backend refuses malformed params itself
        if not arguments and not any(header.startswith(headers.PARAM_PREFIX) for header in request.headers):
            return None
        try:
            channel, native = await self._route(principal, message)
        except BackendError as exc:
            return http.json_message(jsonrpc.error_response(message["id"], exc.code, exc.message))
        known = channel.tools.knows(name)
        if not known:
            await self._list_tools(channel, native, message)
        elif not channel.tools.header_map(name):
            return None  # no annotated argument, so no header to disagree (the common case, kept cheap)
        rejection = validate_mcp_param_headers(channel.tools.schema(name), arguments, request.headers)
        if rejection is not None and known:
            # The schema was remembered from an earlier listing; the tool may have changed since.
            await self._list_tools(channel, native, message)
            rejection = validate_mcp_param_headers(channel.tools.schema(name), arguments, request.headers)
        return _rejection(rejection, message["id"]) if rejection is not None else None

    async def refusal(self, principal: Principal, message: Message) -> Response | None:
        """The HTTP error for a caller the service refuses outright (policy: 403), found
        before the answer starts; other failures are answered as JSON-RPC errors."""
        if jsonrpc.classify(message) is not MessageKind.REQUEST:
            return None
        try:
            await self._route(principal, message)
        except BackendError as exc:
            if exc.status == 403:
                return http.rpc_error(403, exc.code, exc.message, request_id=message["id"])
        return None

    async def answer(self, principal: Principal, message: Message, related: MessageSink) -> Message | None:
        """The response to one 2026-07-28 request (its checks already passed)."""
        request_id = message["id"]
        method = message["method"]
        try:
            channel, native = await self._route(principal, message)
            if method == "server/discover" and not native:
                return {"jsonrpc": "2.0", "id": request_id, "result": _discover_result(channel)}
            response = await self._forward(channel, native, message, related)
        except BackendError as exc:
            return jsonrpc.error_response(request_id, exc.code, exc.message)
        if method == "tools/list":
            channel.tools.absorb(message, response)
        result = response.get("result")
        if isinstance(result, dict):
            shaped = _private(result) if native else _self_contained_result(method, result)
            response = {**response, "result": shaped}
        return response

    async def _route(self, principal: Principal, message: Message) -> tuple[_Channel, bool]:
        """The principal's channel, ready for this request, and whether it goes natively."""
        channel = self._channels.get(principal)
        if channel is None:
            await self._retire(principal)
            channel = self._channels.setdefault(principal, _Channel())
        async with channel.ready:
            if channel.upstream is None:
                channel.upstream = await self._open_upstream(principal, self._no_back_channel(channel))
            if self._native and channel.native_versions is None:
                channel.native_versions = await self._probe(channel.upstream, message)
            if channel.native_versions and envelope_version(message) in channel.native_versions:
                return channel, True
            if channel.initialize_result is None:
                try:
                    channel.initialize_result = await self._initialize(channel.upstream, message)
                except BackendError:
                    # The probe may have failed for the same passing reason: ask again next time.
                    channel.native_versions = None
                    raise
        return channel, False

    async def _probe(self, upstream: Upstream, message: Message) -> frozenset[str]:
        """The 2026-07-28-era versions the backend serves natively, from its `server/discover`."""
        probe = {
            "jsonrpc": "2.0",
            "id": "mcp-front-discover",
            "method": "server/discover",
            "params": {"_meta": envelope(message)},
        }
        try:
            response = await upstream.request(probe, _discard)
        except BackendError as exc:
            logger.info(
                "service %s does not answer server/discover (%s): using the handshake", self.service, exc
            )
            return frozenset()
        result = response.get("result")
        versions = result.get("supportedVersions") if isinstance(result, dict) else None
        served = frozenset(
            version
            for version in (versions if isinstance(versions, list) else [])
            if isinstance(version, str) and version in SELF_CONTAINED_VERSIONS
        )
        logger.info(
            "service %s serves %s natively",
            self.service,
            ", ".join(sorted(served)) or "no 2026-07-28-era version",
        )
        return served

    async def _forward(
        self, channel: _Channel, native: bool, message: Message, related: MessageSink
    ) -> Message:
        assert channel.upstream is not None
        channel.busy += 1
        try:
            if native:
                return await channel.upstream.request(message, related)
            forwarded, restore = self._strip_envelope(message, related)
            key = next(self._tokens)
            channel.in_flight[key] = restore
            try:
                return await channel.upstream.request(forwarded, restore)
            finally:
                del channel.in_flight[key]
        finally:
            channel.busy -= 1

    async def _list_tools(self, channel: _Channel, native: bool, message: Message) -> None:
        """Learn the tools' schemas through the governed upstream, so a hidden tool's stays unknown."""

        async def exchange(listing: Message) -> Message:
            return await self._forward(channel, native, listing, _discard)

        try:
            await list_tools(exchange, envelope(message), channel.tools)
        except BackendError as exc:
            # Without a schema there is nothing to check against; the call itself will tell.
            logger.info("service %s: tools/list for Mcp-Param checks failed: %s", self.service, exc)

    async def _initialize(self, upstream: Upstream, message: Message) -> dict[str, Any]:
        meta = message.get("params", {}).get("_meta", {})
        client_info = meta.get(CLIENT_INFO_META_KEY)
        params = {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": client_info if isinstance(client_info, dict) else GATEWAY_CLIENT_INFO,
        }
        response = await upstream.request(messages.initialize(params), _discard)
        result = response.get("result")
        if not isinstance(result, dict):
            detail = messages.error_detail(response, "no result")
            raise BackendError(f"service '{self.service}' failed to initialize: {detail}")
        await upstream.notify(messages.initialized())
        return result

    def _strip_envelope(self, message: Message, related: MessageSink) -> tuple[Message, MessageSink]:
        """The request as a handshake-era backend expects it, and a sink that puts the
        client's own progress token back on the notifications that come for it.

        Progress tokens are renumbered: requests of one principal share an upstream, and
        two of them may well have picked the same token.
        """
        params = dict(message.get("params") or {})
        meta = without_envelope(params.get("_meta") or {})
        original_token = meta.get("progressToken")
        if original_token is not None:
            meta["progressToken"] = f"mcp-front-{next(self._tokens)}"
        if meta:
            params["_meta"] = meta
        else:
            params.pop("_meta", None)

        capabilities = envelope(message).get(CLIENT_CAPABILITIES_META_KEY)
        restore = _RestoringSink(
            related, original_token, capabilities if isinstance(capabilities, dict) else {}
        )
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

    async def _retire(self, principal: Principal) -> None:
        """Close the caller's channels opened under an earlier form of its principal (its
        groups or client changed), those with nothing in flight."""
        for earlier, channel in list(self._channels.items()):
            if earlier.key != principal.key or earlier.credential != principal.credential:
                continue
            if channel.busy or channel.ready.locked():
                continue
            del self._channels[earlier]
            if channel.upstream is not None:
                with anyio.CancelScope(shield=True):
                    await channel.upstream.aclose()

    async def aclose(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            if channel.upstream is not None:
                await channel.upstream.aclose()


class _RestoringSink:
    """A request's sink as the handshake-era backend sees it: the client's own progress
    token put back, and the capabilities its envelope declared kept (`SelfContainedClient`)."""

    __slots__ = ("_related", "_token", "client_capabilities")

    def __init__(self, related: MessageSink, token: object, client_capabilities: Mapping[str, Any]) -> None:
        self._related = related
        self._token = token
        self.client_capabilities = client_capabilities

    async def __call__(self, notification: Message) -> None:
        if self._token is not None and notification.get("method") == "notifications/progress":
            notification = {
                **notification,
                "params": {**notification.get("params", {}), "progressToken": self._token},
            }
        await self._related(notification)


async def _discard(message: Message) -> None:
    return None


def _discover_result(channel: _Channel) -> dict[str, Any]:
    initialized = channel.initialize_result or {}
    result: dict[str, Any] = {
        "supportedVersions": [*SELF_CONTAINED_VERSIONS, *reversed(HANDSHAKE_VERSIONS)],
        "capabilities": initialized.get("capabilities", {}),
        "resultType": "complete",
        "cacheScope": "private",
        "ttlMs": 0,
    }
    for key in ("serverInfo", "instructions"):
        if key in initialized:
            result[key] = initialized[key]
    return result


def _self_contained_result(method: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """A handshake-era result in 2026-07-28 shape: typed, and with caching directives
    where the era requires them. Results are per user, so never publicly cacheable."""
    shaped = dict(result)
    shaped.setdefault("resultType", "complete")
    if method in CACHEABLE_METHODS:
        shaped.setdefault("cacheScope", "private")
        shaped.setdefault("ttlMs", 0)
    return shaped


def _private(result: dict[str, Any]) -> dict[str, Any]:
    """A native result as the backend gave it, except that a public cache may not keep it:
    the gateway narrows results per user (policy, tool filter, per-user credentials)."""
    if result.get("cacheScope") == "public":
        return {**result, "cacheScope": "private"}
    return result


def _rejection(rejection: InboundLadderRejection, request_id: jsonrpc.RequestId | None) -> Response:
    status = ERROR_CODE_HTTP_STATUS.get(rejection.code, 400)
    return http.rpc_error(
        status, rejection.code, rejection.message, request_id=request_id, data=rejection.data
    )

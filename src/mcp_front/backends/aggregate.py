"""`AggregateRegistry`: one endpoint over several services, each user with their own view.

An aggregate session is an MCP server of its own: it answers `initialize` itself, then
opens one session on every member with the member's own opener, so each member is
reached with the caller's principal, credentials, isolation, tool filter and policy,
exactly as if the caller had opened it directly. Nothing is shared between callers:
a user's lists are built from that user's member sessions and kept in that session.

Listing waits for the members for at most `discovery.timeout`; a member that fails or
is slower is left out of that answer and logged. One that connects later makes the
session tell the client its lists changed, so the client picks it up without a
reconnect. Members' `list_changed` notifications are passed on and drop the cache.

Ids: the aggregate renumbers what it sends to members (its own requests and the
client's share a member), and the requests members send to the client (two members
may pick the same id), and maps the client's answers back.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anyio

from mcp_front._version import __version__
from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError, MessageSink, Upstream, UpstreamOpener, configured
from mcp_front.backends.namespacing import Namespace
from mcp_front.config import DiscoveryConfig, ServerConfig
from mcp_front.lifecycle import TaskGroupOwner
from mcp_front.protocol import jsonrpc, messages
from mcp_front.protocol.jsonrpc import Message, RequestId
from mcp_front.protocol.revisions import GATEWAY_CLIENT_INFO, LATEST_HANDSHAKE_VERSION, negotiated_version
from mcp_front.text import escaped

logger = logging.getLogger("mcp_front.backends.aggregate")

CONNECT_LIMIT: Final = 120.0
"""How long a member may take to open and initialize in the background, whatever the
discovery timeout: past it the attempt is abandoned and retried at the next listing."""
RETRY_AFTER: Final = 5.0
"""How soon a member that failed is tried again, so a dead member does not slow every call."""


@dataclass(frozen=True, slots=True)
class _Listing:
    capability: str
    key: str
    field: str
    """The item's identifying field, qualified with its member."""


_LISTINGS: Final = {
    "tools/list": _Listing("tools", "tools", "name"),
    "prompts/list": _Listing("prompts", "prompts", "name"),
    "resources/list": _Listing("resources", "resources", "uri"),
    "resources/templates/list": _Listing("resources", "resourceTemplates", "uriTemplate"),
}
_CHANGED: Final = {
    "notifications/tools/list_changed": ("tools/list",),
    "notifications/prompts/list_changed": ("prompts/list",),
    "notifications/resources/list_changed": ("resources/list", "resources/templates/list"),
}
_ROUTED: Final = {
    "tools/call": ("name", "tool"),
    "prompts/get": ("name", "prompt"),
    "resources/read": ("uri", "resource"),
    "resources/subscribe": ("uri", "resource"),
    "resources/unsubscribe": ("uri", "resource"),
}
"""Requests for one item, routed to its member: the param naming it, and what it is."""


@dataclass(eq=False)
class _Member:
    name: str
    upstream: Upstream | None = None
    capabilities: dict[str, Any] = field(default_factory=dict)
    connecting: bool = False
    settled: anyio.Event = field(default_factory=anyio.Event)
    failure: str | None = None
    failed_at: float = 0.0
    reserved: bool = False


class AggregateUpstream:
    """The `Upstream` of one client session on an aggregate service."""

    def __init__(
        self,
        registry: AggregateRegistry,
        service: str,
        server: ServerConfig,
        principal: Principal,
        unsolicited: MessageSink,
        members: Mapping[str, UpstreamOpener],
    ) -> None:
        self._registry = registry
        self.service = service
        self._principal = principal
        self._unsolicited = unsolicited
        self._openers = members
        self._discovery = server.discovery or DiscoveryConfig()
        self._namespace = Namespace(server.servers, server.delimiter)
        self._members = {name: _Member(name) for name in server.servers}
        self._client_params: dict[str, Any] = {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": dict(GATEWAY_CLIENT_INFO),
        }
        self._cache: dict[str, tuple[float, list[Any]]] = {}
        self._listed = False
        self._ids = itertools.count(1)
        self._server_requests: dict[RequestId, tuple[_Member, RequestId]] = {}
        self._connects: set[anyio.CancelScope] = set()
        self._closed = False

    # -- the client's side ---------------------------------------------------------------

    async def request(self, message: Message, related: MessageSink) -> Message:
        method = message["method"]
        if method == "initialize":
            return self._initialize(message)
        if method == "ping":
            return _result(message, {})
        if method in _LISTINGS:
            return await self._list(message, _LISTINGS[method])
        if method in _ROUTED:
            return await self._route(message, related, *_ROUTED[method])
        if method == "completion/complete":
            return await self._complete(message, related)
        if method == "logging/setLevel":
            await self._broadcast_request(message, "logging")
            return _result(message, {})
        return jsonrpc.error_response(message["id"], jsonrpc.METHOD_NOT_FOUND, f"Method not found: {method}")

    async def notify(self, message: Message) -> None:
        # Each member had its own `initialized` right after its own `initialize`.
        if message["method"] == "notifications/initialized":
            return
        for member in self._live_members():
            assert member.upstream is not None
            try:
                await member.upstream.notify(message)
            except BackendError as exc:
                logger.warning(
                    "%s: %s not delivered to %s: %s",
                    self.service,
                    escaped(message["method"]),
                    member.name,
                    escaped(exc.message),
                )

    async def respond(self, message: Message) -> None:
        request_id = message.get("id")
        route = self._server_requests.pop(request_id, None) if isinstance(request_id, str | int) else None
        if route is None:
            logger.debug("%s: an answer to no pending server request was dropped", self.service)
            return
        member, original_id = route
        if member.upstream is not None:
            await member.upstream.respond({**message, "id": original_id})

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for scope in self._connects:
            scope.cancel()
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as task_group:
                for member in self._members.values():
                    task_group.start_soon(self._disconnect, member)
        self._registry.forget(self)

    # -- requests the aggregate answers --------------------------------------------------

    def _initialize(self, message: Message) -> Message:
        params = message.get("params") or {}
        version = negotiated_version(params.get("protocolVersion"))
        capabilities = params.get("capabilities")
        client_info = params.get("clientInfo")
        self._client_params = {
            "protocolVersion": version,
            # Members may ask the client for sampling, elicitation or roots as it allows.
            "capabilities": capabilities if isinstance(capabilities, dict) else {},
            "clientInfo": client_info if isinstance(client_info, dict) else dict(GATEWAY_CLIENT_INFO),
        }
        for member in self._members.values():
            self._connect_soon(member)
        return _result(
            message,
            {
                "protocolVersion": version,
                "capabilities": {
                    "tools": {"listChanged": True},
                    "prompts": {"listChanged": True},
                    "resources": {"listChanged": True, "subscribe": True},
                    "logging": {},
                    "completions": {},
                },
                "serverInfo": {"name": self.service, "version": __version__},
            },
        )

    async def _list(self, message: Message, listing: _Listing) -> Message:
        params = message.get("params") or {}
        if params.get("cursor") is not None:
            # Every answer is one whole page, so no cursor was ever handed out.
            return jsonrpc.error_response(message["id"], jsonrpc.INVALID_PARAMS, "Invalid cursor")
        method = message["method"]
        cached = self._cache.get(method)
        if cached is not None and cached[0] > time.monotonic():
            items = cached[1]
        else:
            items, complete = await self._gather(method, listing)
            if complete:
                self._cache[method] = (time.monotonic() + self._discovery.cache_ttl.total_seconds(), items)
        self._listed = True
        return _result(message, {listing.key: items})

    async def _gather(self, method: str, listing: _Listing) -> tuple[list[Any], bool]:
        """Every member's items, qualified, in configuration order; and whether every
        member answered."""
        for member in self._members.values():
            self._connect_soon(member)
        found: dict[str, list[Any]] = {}
        timeout = self._discovery.timeout.total_seconds()

        async def collect(member: _Member) -> None:
            with anyio.move_on_after(timeout) as scope:
                await member.settled.wait()
                if member.upstream is None:
                    return
                if listing.capability not in member.capabilities:
                    found[member.name] = []
                    return
                try:
                    items = await self._list_member(member, method, listing)
                except BackendError as exc:
                    logger.warning(
                        "%s: %s left out of %s: %s", self.service, member.name, method, exc.message
                    )
                    return
                found[member.name] = [
                    qualified
                    for item in items
                    if (qualified := self._qualified_item(member.name, item, listing)) is not None
                ]
            if scope.cancelled_caught:
                logger.warning(
                    "%s: %s left out of %s: no answer within %.3g s",
                    self.service,
                    member.name,
                    method,
                    timeout,
                )

        async with anyio.create_task_group() as task_group:
            for member in self._members.values():
                task_group.start_soon(collect, member)
        items: list[Any] = []
        seen: set[str] = set()
        for name in self._members:
            for item in found.get(name, []):
                key = item.get(listing.field)
                if key in seen:
                    continue
                seen.add(key)
                items.append(item)
        return items, len(found) == len(self._members)

    async def _list_member(self, member: _Member, method: str, listing: _Listing) -> list[Any]:
        items: list[Any] = []
        cursor: Any = None
        while True:
            params = {"cursor": cursor} if cursor is not None else {}
            response = await self._forward(member, {"method": method, "params": params}, _discard)
            result = _result_of(response)
            page = result.get(listing.key)
            if not isinstance(page, list):
                raise BackendError(f"{method} answered without a list of {listing.key}")
            items.extend(item for item in page if isinstance(item, dict))
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                return items

    def _qualified_item(self, member: str, item: dict[str, Any], listing: _Listing) -> dict[str, Any] | None:
        """The item under its aggregate name; `None` for one that cannot be offered: it has
        no name, or its qualified name would route to another member (with `-` as the
        delimiter, member `db`'s tool `replica-drop` reads as member `db-replica`'s `drop`)."""
        value = item.get(listing.field)
        if not isinstance(value, str):
            return None
        if listing.capability == "resources":
            return {**item, listing.field: self._namespace.qualify_uri(member, value)}
        qualified = self._namespace.qualify(member, value)
        if self._namespace.resolve(qualified) != (member, value):
            logger.warning(
                "%s: %s offers %s, which would name another member's; left out",
                self.service,
                member,
                escaped(repr(value)),
            )
            return None
        return {**item, listing.field: qualified}

    # -- requests routed to one member ---------------------------------------------------

    async def _route(self, message: Message, related: MessageSink, key: str, kind: str) -> Message:
        """Send a request that names one item (`params[key]`) to the item's member."""
        params = message.get("params") or {}
        value = params.get(key)
        resolve = self._namespace.resolve_uri if key == "uri" else self._namespace.resolve
        resolved = resolve(value) if isinstance(value, str) else None
        if resolved is None:
            return jsonrpc.error_response(message["id"], jsonrpc.INVALID_PARAMS, f"Unknown {kind}: {value}")
        member_name, own = resolved
        return await self._routed(member_name, message, {**params, key: own}, related)

    async def _complete(self, message: Message, related: MessageSink) -> Message:
        params = message.get("params") or {}
        ref = params.get("ref")
        resolved: tuple[str, str] | None = None
        if isinstance(ref, dict) and ref.get("type") == "ref/prompt" and isinstance(ref.get("name"), str):
            resolved = self._namespace.resolve(ref["name"])
            key = "name"
        elif isinstance(ref, dict) and ref.get("type") == "ref/resource" and isinstance(ref.get("uri"), str):
            resolved = self._namespace.resolve_uri(ref["uri"])
            key = "uri"
        if resolved is None:
            return jsonrpc.error_response(
                message["id"], jsonrpc.INVALID_PARAMS, "Unknown completion reference"
            )
        assert isinstance(ref, dict)
        member_name, own = resolved
        return await self._routed(member_name, message, {**params, "ref": {**ref, key: own}}, related)

    async def _routed(
        self, member_name: str, message: Message, params: dict[str, Any], related: MessageSink
    ) -> Message:
        member = await self._ready(member_name)
        response = await self._forward(
            member, {**message, "params": params}, self._from_member_to(member, related)
        )
        result = response.get("result")
        if isinstance(result, dict):
            response = {**response, "result": self._namespace.qualify_result(member.name, result)}
        return {**response, "id": message["id"]}

    async def _broadcast_request(self, message: Message, capability: str) -> None:
        async def send(member: _Member) -> None:
            try:
                await self._forward(member, message, _discard)
            except BackendError as exc:
                logger.warning(
                    "%s: %s to %s failed: %s",
                    self.service,
                    escaped(message["method"]),
                    member.name,
                    escaped(exc),
                )

        async with anyio.create_task_group() as task_group:
            for member in self._live_members():
                if capability in member.capabilities:
                    task_group.start_soon(send, member)

    async def _forward(self, member: _Member, message: Message, related: MessageSink) -> Message:
        """Send a request to a member under an id of the aggregate's own."""
        assert member.upstream is not None
        own = {**message, "jsonrpc": "2.0", "id": f"mcp-front-{next(self._ids)}"}
        return await member.upstream.request(own, related)

    # -- members -------------------------------------------------------------------------

    async def _ready(self, name: str) -> _Member:
        """The member, connected.

        A call waits for its member as long as the member's own start takes (a call
        made directly would too); only listings, which must not wait on the slowest
        member, are bound by the discovery timeout.
        """
        member = self._members[name]
        self._connect_soon(member)
        await member.settled.wait()
        if member.upstream is None:
            reason = member.failure or "it did not connect"
            raise BackendError(f"service '{name}' of '{self.service}' is unavailable: {reason}")
        return member

    def _live_members(self) -> list[_Member]:
        return [member for member in self._members.values() if member.upstream is not None]

    def _connect_soon(self, member: _Member) -> None:
        if self._closed or member.connecting or member.upstream is not None:
            return
        if member.failure is not None and time.monotonic() - member.failed_at < RETRY_AFTER:
            return
        member.connecting = True
        member.settled = anyio.Event()
        self._registry.task_group.start_soon(self._connect, member)

    async def _connect(self, member: _Member) -> None:
        upstream: Upstream | None = None
        if self._closed:
            member.connecting = False
            member.settled.set()
            return
        with anyio.CancelScope() as scope:
            self._connects.add(scope)
            try:
                with anyio.fail_after(CONNECT_LIMIT):
                    if not member.reserved:
                        member.reserved = self._registry.reserve(self._principal, self._discovery)
                        if not member.reserved:
                            raise BackendError("the user's limit of backend connections is reached")
                    upstream = await self._openers[member.name](
                        self._principal, self._from_member_to(member, self._unsolicited)
                    )
                    response = await upstream.request(messages.initialize(self._client_params), _discard)
                    result = _result_of(response)
                    await upstream.notify(messages.initialized())
            except Exception as exc:  # a background task must not take down the registry
                reason = _reason(exc)
                member.failure, member.failed_at = reason, time.monotonic()
                logger.warning("%s: member %s is unavailable: %s", self.service, member.name, reason)
                if upstream is not None:
                    with anyio.CancelScope(shield=True):
                        await upstream.aclose()
                self._release(member)
            else:
                if self._closed:
                    # The session ended while this member was opening.
                    with anyio.CancelScope(shield=True):
                        await upstream.aclose()
                    self._release(member)
                    return
                capabilities = result.get("capabilities")
                member.capabilities = capabilities if isinstance(capabilities, dict) else {}
                member.upstream, member.failure = upstream, None
                if self._listed:
                    await self._announce_lists(member)
            finally:
                member.connecting = False
                member.settled.set()
                self._connects.discard(scope)
        if scope.cancelled_caught and upstream is not None and member.upstream is None:
            with anyio.CancelScope(shield=True):
                await upstream.aclose()
            self._release(member)

    async def _announce_lists(self, member: _Member) -> None:
        """Tell the client a member it has not seen yet arrived late."""
        for notification, methods in _CHANGED.items():
            capability = notification.split("/")[1]
            if capability in member.capabilities:
                for method in methods:
                    self._cache.pop(method, None)
                await self._deliver(self._unsolicited, {"jsonrpc": "2.0", "method": notification})

    async def _disconnect(self, member: _Member) -> None:
        upstream, member.upstream = member.upstream, None
        if upstream is not None:
            await upstream.aclose()
        self._release(member)

    def _release(self, member: _Member) -> None:
        if member.reserved:
            member.reserved = False
            self._registry.release(self._principal)

    # -- the members' side ---------------------------------------------------------------

    def _from_member_to(self, member: _Member, sink: MessageSink) -> MessageSink:
        """A sink for `member`'s server messages that passes them to `sink` in the
        aggregate's terms."""

        async def deliver(message: Message) -> None:
            await self._deliver(sink, self._translated(member, message))

        return deliver

    def _translated(self, member: _Member, message: Message) -> Message:
        method = message.get("method")
        if "id" in message and method is not None:
            own_id = f"{member.name}-{next(self._ids)}"
            self._server_requests[own_id] = (member, message["id"])
            return {**message, "id": own_id}
        if method in _CHANGED:
            for listing in _CHANGED[method]:
                self._cache.pop(listing, None)
        elif method == "notifications/resources/updated":
            params = message.get("params") or {}
            if isinstance(params.get("uri"), str):
                uri = self._namespace.qualify_uri(member.name, params["uri"])
                return {**message, "params": {**params, "uri": uri}}
        return message

    async def _deliver(self, sink: MessageSink, message: Message) -> None:
        try:
            await sink(message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            logger.debug(
                "%s: %s not delivered: the client's stream is gone",
                self.service,
                escaped(message.get("method")),
            )


class AggregateRegistry(TaskGroupOwner):
    """Opens `AggregateUpstream`s; holds their background connects and the count of
    backend connections each user holds through aggregates.

    `members` opens each member service as a caller would open it directly (its
    governance and admission included); the registry looks it up by the member's name.
    A gateway binds them itself to a registry built without them.
    """

    def __init__(
        self, services: Mapping[str, ServerConfig], members: Mapping[str, UpstreamOpener] | None = None
    ) -> None:
        self.services = services
        self.members: Mapping[str, UpstreamOpener] = members or {}
        self._upstreams: set[AggregateUpstream] = set()
        self._connections: Counter[str] = Counter()

    def bind(self, members: Mapping[str, UpstreamOpener]) -> None:
        """Open members with `members`: how the gateway's own services are opened."""
        self.members = members

    async def open(self, service: str, principal: Principal, sink: MessageSink) -> AggregateUpstream:
        server = configured(self.services, service, "registry")
        openers = {member: configured(self.members, member, "registry") for member in server.servers}
        upstream = AggregateUpstream(self, service, server, principal, sink, openers)
        self._upstreams.add(upstream)
        return upstream

    @property
    def session_count(self) -> int:
        return len(self._upstreams)

    def connections_of(self, principal: Principal) -> int:
        return self._connections[principal.key]

    def reserve(self, principal: Principal, discovery: DiscoveryConfig) -> bool:
        limit = discovery.max_conns_per_user
        if limit and self._connections[principal.key] >= limit:
            return False
        self._connections[principal.key] += 1
        return True

    def release(self, principal: Principal) -> None:
        self._connections[principal.key] -= 1
        if self._connections[principal.key] <= 0:
            del self._connections[principal.key]

    def forget(self, upstream: AggregateUpstream) -> None:
        self._upstreams.discard(upstream)

    async def aclose(self) -> None:
        async with anyio.create_task_group() as task_group:
            for upstream in list(self._upstreams):
                task_group.start_soon(upstream.aclose)


def _result(message: Message, result: dict[str, Any]) -> Message:
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def _result_of(response: Message) -> dict[str, Any]:
    result = response.get("result")
    if isinstance(result, dict):
        return result
    error = response.get("error")
    detail = error.get("message") if isinstance(error, dict) else None
    raise BackendError(str(detail or "answered without a result"))


def _reason(exc: Exception) -> str:
    if isinstance(exc, BackendError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return f"it did not initialize within {CONNECT_LIMIT:.0f} s"
    # Only the type: the text of an unexpected error may quote a URL and its credentials.
    return f"unexpected {type(exc).__name__}"


async def _discard(message: Message) -> None:
    """Server messages about the aggregate's own requests concern no client request."""

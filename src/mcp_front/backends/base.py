"""What a front transport needs from a backend: one MCP connection per client session,
opened by the backend's factory for a service and a caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar, runtime_checkable

from mcp_front.auth.principal import Principal
from mcp_front.backends.templating import UserTokenSource
from mcp_front.config import ServerConfig
from mcp_front.errors import MCPFrontError
from mcp_front.protocol.jsonrpc import INTERNAL_ERROR, Message

MessageSink = Callable[[Message], Awaitable[None]]
"""Receives server messages: either those tied to one request, or the unsolicited rest."""


@runtime_checkable
class SelfContainedClient(Protocol):
    """The sink of a 2026-07-28 request whose envelope the front took off before the
    backend: it still says what the client declared it can receive."""

    client_capabilities: Mapping[str, Any]

    async def __call__(self, message: Message) -> None: ...


class BackendError(MCPFrontError):
    """A failure the client is told about as a JSON-RPC error, never as a 500.

    `status` is the HTTP status when the failure ends a request that has no session
    yet: 502 when the backend could not be reached, 403 when policy refuses the caller.
    """

    def __init__(self, message: str, *, code: int = INTERNAL_ERROR, status: int = 502) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class Upstream(Protocol):
    """One client session's connection to its backend.

    Request ids are the client's on both sides of this interface; an upstream that
    multiplexes or replays renumbers them internally. Server-initiated requests keep
    the backend's ids, so the client's answers pass through `respond` unchanged.
    """

    async def request(self, message: Message, related: MessageSink) -> Message:
        """Send a client request and return its response.

        Server messages about this request (progress, for one) go to `related`.
        Cancelling the calling task cancels the request at the backend.
        """
        ...

    async def notify(self, message: Message) -> None:
        """Forward a client notification."""
        ...

    async def respond(self, message: Message) -> None:
        """Forward the client's response to a server-initiated request."""
        ...

    async def aclose(self) -> None:
        """End the session and release whatever backs it."""
        ...


UpstreamOpener = Callable[[Principal, MessageSink], Awaitable[Upstream]]
"""Opens one service's upstream for a caller; the server's unsolicited messages go to the sink."""


@runtime_checkable
class BackendFactory(Protocol):
    """What every kind of backend implements: sessions on the services it serves.

    The factory knows the configuration of those services from its construction, and
    runs inside `async with factory.run():`, which holds whatever its sessions share
    (processes, connection pools, background tasks) and ends every session on exit.
    """

    services: Mapping[str, ServerConfig]
    """The services it serves, by name, with their configuration."""

    def run(self) -> AbstractAsyncContextManager[object]:
        """Hold the factory's shared resources for as long as the block runs."""
        ...

    async def open(self, service: str, principal: Principal, sink: MessageSink) -> Upstream:
        """A new session on `service` for `principal`; unsolicited server messages go to `sink`.

        Raises `BackendError` when the session cannot be opened (a backend that must be
        reached first and is down, a limit reached).
        """
        ...


@runtime_checkable
class TakesUserTokens(Protocol):
    """A factory whose backends can be given each caller's own credential for a service
    (`$userToken` placeholders, `requiresUserToken`); the gateway hands its source to a
    factory built without one."""

    user_tokens: UserTokenSource | None


_Config = TypeVar("_Config")


def configured(services: Mapping[str, _Config], service: str, kind: str) -> _Config:
    """The configuration of `service` in a factory's `services`, or a `LookupError` that says
    the gateway asked the wrong factory."""
    try:
        return services[service]
    except KeyError:
        raise LookupError(f"service '{service}' is not one of this {kind}'s services") from None


class WrappedUpstream:
    """An `Upstream` that passes everything to `inner`: the base of the layers that
    govern a session (tool filter, policy, audit), which override only `request`."""

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner

    async def request(self, message: Message, related: MessageSink) -> Message:
        return await self.inner.request(message, related)

    async def notify(self, message: Message) -> None:
        await self.inner.notify(message)

    async def respond(self, message: Message) -> None:
        await self.inner.respond(message)

    async def aclose(self) -> None:
        await self.inner.aclose()


def called_tool(message: Message) -> str | None:
    """The tool a `tools/call` names, if it names one."""
    name = (message.get("params") or {}).get("name")
    return name if isinstance(name, str) else None


def listing_narrowed(response: Message, offered: Callable[[str], bool]) -> Message:
    """A `tools/list` response with only the tools `offered` keeps."""
    result = response.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
        return response
    tools = [
        tool
        for tool in result["tools"]
        if isinstance(tool, dict) and isinstance(tool.get("name"), str) and offered(tool["name"])
    ]
    return {**response, "result": {**result, "tools": tools}}

"""`BackendSession`: what every backend holding a session of its own shares.

A stdio child, a legacy SSE stream and a streamable-HTTP backend session each carry
one client session to one MCP server, and each may have to start over (a respawned
process, a reconnected stream, a session the server expired). Then the client's
`initialize` is replayed, and its `notifications/initialized` if it had sent one, so
the client never sees the difference. The rest is shared too: values rendered for the
session's principal, and messages decoded with a warning when a server sends garbage.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError
from mcp_front.backends.templating import ConfigValue, UserTokenSource, render_value
from mcp_front.config import ServerConfig, UserTokenTemplate
from mcp_front.credentials.oauth_connections import ServiceUnreachable
from mcp_front.protocol import jsonrpc, messages
from mcp_front.protocol.jsonrpc import Message, MessageKind
from mcp_front.storage import StoreUnavailable

_STORE_UNREACHABLE = (
    "service '{service}': the gateway cannot read your credential right now (its store is "
    "unreachable); try again in a few seconds"
)

Exchange = Callable[[Message], Awaitable[Message]]
"""Sends one request to the backend and returns its response."""
Send = Callable[[Message], Awaitable[None]]
"""Sends one notification to the backend."""


class BackendSession:
    """One client session's backend session: its service, principal and handshake.

    Subclasses are the `Upstream`s of the session-ful backends; they call `handshake_seen`
    for what the client sends, and `replay_initialize` when they start over.
    """

    logger = logging.getLogger("mcp_front.backends")
    """Where the session logs; each kind of backend names its own."""

    def __init__(
        self,
        service: str,
        server: ServerConfig,
        principal: Principal,
        user_tokens: UserTokenSource | None,
    ) -> None:
        self.service = service
        self.server = server
        self.principal = principal
        self.user_tokens = user_tokens
        self.initialize_params: dict[str, Any] | None = None
        """The params of the client's successful `initialize`, replayed on a restart."""
        self.client_initialized = False
        """Whether the client sent `notifications/initialized`, replayed after `initialize`."""
        self.closed = False

    @property
    def log_context(self) -> dict[str, str]:
        """The `extra` of the session's log records."""
        return {"service": self.service, "principal": self.principal.display_name}

    def closed_error(self) -> BackendError:
        return BackendError(f"the session with service '{self.service}' is closed")

    # -- the handshake ------------------------------------------------------------------

    def record_initialize(self, request: Message, response: Message) -> None:
        """Remember a successful `initialize`, to replay it when the session starts over."""
        if "result" in response:
            params = request.get("params")
            self.initialize_params = params if isinstance(params, dict) else {}

    def record_notification(self, message: Message) -> bool:
        """Note a client notification; true when it is the first `notifications/initialized`."""
        if message["method"] != messages.INITIALIZED or self.client_initialized:
            return False
        self.client_initialized = True
        return True

    async def replay_initialize(self, exchange: Exchange, send: Send, *, occasion: str) -> None:
        """Initialize a new backend session as the client did the first one.

        `occasion` completes "failed to initialize again …" in the error a failure raises.
        """
        if self.initialize_params is None:
            return
        response = await exchange(messages.initialize(self.initialize_params))
        if "result" not in response:
            raise BackendError(
                f"service '{self.service}' failed to initialize again {occasion}: "
                f"{messages.error_detail(response)}"
            )
        if self.client_initialized:
            await send(messages.initialized())

    # -- values and messages ------------------------------------------------------------

    async def render(self, value: ConfigValue) -> str:
        """A configured value filled in for this session's principal; a `$userToken` value
        without the caller's credential becomes its template with an empty token."""
        rendered = await self._rendered(value)
        if rendered is None:
            return value.render("") if isinstance(value, UserTokenTemplate) else ""
        return rendered

    async def render_all(self, values: Mapping[str, ConfigValue]) -> dict[str, str]:
        """Named values (headers, environment) for this session's principal; a `$userToken`
        value without the caller's credential is left out."""
        rendered = {name: await self._rendered(value) for name, value in values.items()}
        return {name: value for name, value in rendered.items() if value is not None}

    async def current_credential(self) -> str | None:
        """The caller's credential for the service as of now, if the service uses one."""
        if not self.server.requires_user_token or self.user_tokens is None:
            return None
        try:
            return await self.user_tokens(self.principal, self.service)
        except ServiceUnreachable as error:
            raise BackendError(f"service '{self.service}': {error}", status=502) from None
        except StoreUnavailable:
            raise BackendError(_STORE_UNREACHABLE.format(service=self.service), status=503) from None

    async def _rendered(self, value: ConfigValue) -> str | None:
        try:
            return await render_value(value, self.principal, self.service, self.user_tokens)
        except ServiceUnreachable as error:
            raise BackendError(f"service '{self.service}': {error}", status=502) from None
        except StoreUnavailable:
            raise BackendError(_STORE_UNREACHABLE.format(service=self.service), status=503) from None

    def decode(self, data: bytes | str, source: str) -> tuple[Message, MessageKind] | None:
        """A message the backend sent, or `None` (logged) when it is not one.

        `source` says what carried it, as in "service x sent an event that is not…".
        """
        try:
            message = jsonrpc.decode(data)
            kind = jsonrpc.classify(message)
        except ValueError:
            self.logger.warning(
                "service %s %s that is not a JSON-RPC message; ignored",
                self.service,
                source,
                extra=self.log_context,
            )
            return None
        assert isinstance(message, dict)
        return message, kind

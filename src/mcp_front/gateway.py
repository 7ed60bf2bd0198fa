"""`Gateway`: owns the components, their lifecycle, and the routing table of services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.audit import AuditLog, AuditLogError
from mcp_front.auth.principal import Principal
from mcp_front.auth.resource import FailedAuthentications, ResourceGuard
from mcp_front.auth.server import AuthorizationServer
from mcp_front.auth.service_auth import StaticCredentials
from mcp_front.auth.service_policy import ServiceAccess
from mcp_front.backends.aggregate import AggregateRegistry
from mcp_front.backends.audited import audited_opener
from mcp_front.backends.base import BackendError, MessageSink, Upstream
from mcp_front.backends.inline import InlineToolRegistry
from mcp_front.backends.policy import POLICY_DENIED, policy_opener
from mcp_front.backends.sse import SSEForwarder
from mcp_front.backends.stdio import StdioLimits, StdioSessionPool
from mcp_front.backends.streamable_http import StreamableHTTPForwarder
from mcp_front.backends.templating import UserTokenSource, with_static_user_tokens
from mcp_front.backends.tool_filter import ToolFilteredUpstream
from mcp_front.config import GatewayConfig, ServerConfig
from mcp_front.config.compatibility import inert_keys
from mcp_front.idp.base import IdentityProvider
from mcp_front.idp.factory import provider_from_config
from mcp_front.rate_limit import MemoryRateLimiter, RateLimit
from mcp_front.storage import Store, open_store
from mcp_front.transports import http, jsonrpc
from mcp_front.transports.answer import Heartbeat
from mcp_front.transports.session import SessionLimits, SessionRegistry, UpstreamOpener
from mcp_front.transports.sse import SSETransport
from mcp_front.transports.streamable_http import StreamableHTTPTransport

logger = logging.getLogger("mcp_front.gateway")


class GatewayError(Exception):
    """A configuration the gateway cannot serve, named by its key path."""


@dataclass(frozen=True, slots=True)
class Service:
    """One entry of the routing table: a configured MCP server behind its guard."""

    name: str
    config: ServerConfig
    app: ASGIApp


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        user_tokens: UserTokenSource | None = None,
        ping_interval: float = http.PING_INTERVAL,
        store: Store | None = None,
        identity_provider: IdentityProvider | None = None,
    ) -> None:
        """`store` and `identity_provider` replace those `proxy.auth` describes (tests and
        host apps with their own); the gateway closes only what it opened itself."""
        self.config = config
        proxy = config.proxy
        sessions = proxy.sessions
        user_tokens = with_static_user_tokens(config.mcp_servers, user_tokens)
        self.pool = StdioSessionPool(
            StdioLimits(
                max_per_principal=sessions.max_per_user,
                max_processes=sessions.max_processes,
                idle_timeout=sessions.timeout,
                sweep_interval=sessions.cleanup_interval,
            ),
            user_tokens=user_tokens,
        )
        self.streamable_http = StreamableHTTPForwarder(user_tokens=user_tokens)
        self.sse = SSEForwarder(user_tokens=user_tokens)
        self.inline = InlineToolRegistry()
        self.aggregates = AggregateRegistry()
        self.sessions = SessionRegistry(
            SessionLimits(
                retention=max(sessions.retention, sessions.timeout),
                max_per_principal=max(100, 10 * sessions.max_per_user),
                sweep_interval=sessions.cleanup_interval,
            )
        )
        self.origins = http.OriginPolicy([proxy.origin, *proxy.cors_allowed_origins])
        self._ping_interval = ping_interval
        self.heartbeat = Heartbeat(ping_interval)
        self.limiter = MemoryRateLimiter()
        self.authorization_server = self._build_authorization_server(store, identity_provider)
        self._credentials: dict[str, StaticCredentials | None] = {}
        self._streamable_transports: list[StreamableHTTPTransport] = []
        self.audit = AuditLog.from_config(proxy.audit)
        self.services = {
            name: self._build_service(name, server) for name, server in config.mcp_servers.items()
        }

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Gateway]:
        """Run the background parts; on exit every session ends and every child is gone."""
        async with AsyncExitStack() as stack:
            try:
                self.audit.open()
            except AuditLogError as exc:
                raise GatewayError(str(exc)) from exc
            stack.callback(self.audit.close)
            await stack.enter_async_context(self.pool.run())
            await stack.enter_async_context(self.streamable_http.run())
            await stack.enter_async_context(self.sse.run())
            await stack.enter_async_context(self.inline.run())
            await stack.enter_async_context(self.aggregates.run())
            await stack.enter_async_context(self.sessions.run())
            for transport in self._streamable_transports:
                # 2026-07-28 channels hold backends outside any session: end them before the backends stop.
                stack.push_async_callback(transport.aclose)
            heartbeat = await stack.enter_async_context(anyio.create_task_group())
            heartbeat.start_soon(self.heartbeat.run)
            stack.callback(heartbeat.cancel_scope.cancel)
            if self.authorization_server is not None:
                await self._start_authorization_server(stack, self.authorization_server)
            for issue in inert_keys(self.config):
                logger.warning("configuration: %s", issue)
            logger.info("serving %d service(s): %s", len(self.services), ", ".join(self.services) or "none")
            yield self

    def _build_authorization_server(
        self, store: Store | None, identity_provider: IdentityProvider | None
    ) -> AuthorizationServer | None:
        auth = self.config.proxy.auth
        if auth is None:
            return None
        self._owned_store = store is None
        self._owned_idp = identity_provider is None
        return AuthorizationServer(
            auth,
            base_url=self.config.proxy.base_url,
            services=self.config.mcp_servers,
            store=store if store is not None else open_store(auth.storage),
            idp=identity_provider if identity_provider is not None else provider_from_config(auth.idp),
            rate_limits=self.config.proxy.rate_limits,
            limiter=self.limiter,
        )

    async def _start_authorization_server(self, stack: AsyncExitStack, server: AuthorizationServer) -> None:
        if self._owned_store:
            stack.push_async_callback(server.store.aclose)
        if self._owned_idp:
            closer = getattr(server.idp, "aclose", None)
            if closer is not None:
                stack.push_async_callback(closer)
        discover = getattr(server.idp, "discover", None)
        if discover is not None:
            # Sign-in needs the provider's endpoints; fail at start, not at a user's first login.
            await discover()
        await stack.enter_async_context(server.run())

    def _build_service(self, name: str, server: ServerConfig) -> Service:
        credentials = self._credentials_of(name)
        oauth = self.authorization_server.oauth_resource(name) if self.authorization_server else None
        if credentials is None and oauth is None:
            logger.warning("service %s accepts anonymous requests: it has no serviceAuths", name)
        opener = self._opener(name, server)
        prefix = f"{self.config.proxy.base_path}/{name}"
        streamable = StreamableHTTPTransport(
            name,
            self.sessions,
            opener,
            self.origins,
            heartbeat=self.heartbeat,
            ping_interval=self._ping_interval,
            native_modern=server.type == "direct" and server.transport_type == "streamable-http",
        )
        self._streamable_transports.append(streamable)
        sse = SSETransport(
            name,
            self.sessions,
            opener,
            self.origins,
            message_path=f"{prefix}/message",
            ping_interval=self._ping_interval,
        )
        endpoints = ServiceEndpoints(name, {"/mcp": streamable, "/sse": sse.stream, "/message": sse.message})
        failures = self.config.proxy.rate_limits.failed_authentication
        guarded = ResourceGuard(
            endpoints,
            service=name,
            credentials=credentials,
            oauth=oauth,
            realm=self.config.proxy.name,
            failures=None
            if failures is None
            else FailedAuthentications(self.limiter, RateLimit(failures.requests, failures.per)),
        )
        return Service(name, server, guarded)

    def _opener(self, name: str, server: ServerConfig) -> UpstreamOpener:
        """How a new session of this service reaches its backend, governed by its rules."""
        # An aggregate's members record the calls they serve; the aggregate records only
        # what its own rules refuse, so each call is in the audit log once.
        return self._governed(
            name, server, self._backend_opener(name, server), record_calls=server.type != "aggregate"
        )

    def _backend_opener(self, name: str, server: ServerConfig) -> UpstreamOpener:
        """How a new session reaches the backend itself, one way per kind of service."""

        async def open_stdio(principal: Principal, unsolicited: MessageSink) -> Upstream:
            return self.pool.open(name, server, principal, unsolicited)

        async def open_streamable_http(principal: Principal, unsolicited: MessageSink) -> Upstream:
            return self.streamable_http.open(name, server, principal, unsolicited)

        async def open_sse(principal: Principal, unsolicited: MessageSink) -> Upstream:
            return await self.sse.open(name, server, principal, unsolicited)

        async def open_inline(principal: Principal, unsolicited: MessageSink) -> Upstream:
            return self.inline.open(name, server, principal, unsolicited)

        if server.type == "aggregate":
            return self._aggregate_opener(name, server)
        openers: dict[str, UpstreamOpener] = {
            "stdio": open_stdio,
            "streamable-http": open_streamable_http,
            "sse": open_sse,
            "inline": open_inline,
        }
        return openers[server.transport_type or "stdio"]

    def _credentials_of(self, name: str) -> StaticCredentials | None:
        """A service's static credentials, built once (verifying them hashes passwords)."""
        if name not in self._credentials:
            auths = self.config.mcp_servers[name].service_auths
            self._credentials[name] = StaticCredentials(name, auths) if auths else None
        return self._credentials[name]

    def _aggregate_opener(self, name: str, server: ServerConfig) -> UpstreamOpener:
        # Members open exactly as their own services do, so their filters, policies and
        # per-user isolation hold inside the aggregate too.
        members = {member: self._member_opener(member) for member in server.servers}

        async def open_aggregate(principal: Principal, unsolicited: MessageSink) -> Upstream:
            return self.aggregates.open(name, server, principal, unsolicited, members)

        return open_aggregate

    def _member_opener(self, member: str) -> UpstreamOpener:
        """How an aggregate opens `member` for a caller: only a caller the member's own guard
        would let in, since the aggregate's guard is not the member's."""
        opener = self._opener(member, self.config.mcp_servers[member])
        credentials = self._credentials_of(member)
        accepts_users = self.authorization_server is not None
        guarded = credentials is not None or accepts_users

        async def open_member(principal: Principal, unsolicited: MessageSink) -> Upstream:
            admitted = (
                not guarded
                or (principal.kind == "user" and accepts_users)
                or (credentials is not None and credentials.admits(principal))
            )
            if not admitted:
                raise BackendError(
                    f"{principal.display_name} may not use service '{member}'", code=POLICY_DENIED, status=403
                )
            return await opener(principal, unsolicited)

        return open_member

    def _governed(
        self, name: str, server: ServerConfig, opener: UpstreamOpener, *, record_calls: bool = True
    ) -> UpstreamOpener:
        """`opener`, with the service's rules applied to every session it opens.

        The layers, outermost first: audit, policy, tool filter. The audit sees what the
        rules under it refuse; the tool filter is innermost so the policy never reveals a
        tool the filter hides. With `record_calls=False` the audit records only refusals.
        """
        tool_filter = server.options.tool_filter
        if tool_filter is not None:
            inner = opener

            async def open_filtered(principal: Principal, unsolicited: MessageSink) -> Upstream:
                return ToolFilteredUpstream(await inner(principal, unsolicited), tool_filter)

            opener = open_filtered
        access = ServiceAccess.of(name, server.policy) if server.policy is not None else None
        if access is not None:
            opener = policy_opener(opener, access)
        return audited_opener(
            opener, self.audit, name, access=access, tool_filter=tool_filter, record_calls=record_calls
        )


class ServiceEndpoints:
    """Dispatches `/<service>/<endpoint>` to the endpoint's ASGI callable."""

    def __init__(self, service: str, endpoints: dict[str, ASGIApp]) -> None:
        self.service = service
        self._endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        suffix = path[len(root) :] if root and path.startswith(root) else path
        endpoint = self._endpoints.get(suffix.rstrip("/") or "/")
        if endpoint is None:
            response: Response = http.rpc_error(
                404,
                jsonrpc.INVALID_REQUEST,
                f"Not found: service '{self.service}' has /mcp, /sse and /message",
            )
            await response(scope, receive, send)
            return
        await endpoint(scope, receive, send)

"""`Gateway`: the backend factories built from config, each service mapped to its guarded
app, and one exit stack that runs them all."""

from __future__ import annotations

import logging
import os
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial

import anyio
from pydantic import ValidationError
from starlette.types import ASGIApp

from mcp_front.account import AccountPages
from mcp_front.audit import AuditLog, AuditLogError
from mcp_front.auth.audience import normalise
from mcp_front.auth.principal import Principal
from mcp_front.auth.resource import FailedAuthentications, ResourceGuard
from mcp_front.auth.server import AuthorizationServer
from mcp_front.auth.service_auth import StaticCredentials
from mcp_front.backends.aggregate import AggregateRegistry
from mcp_front.backends.base import BackendFactory, TakesUserTokens, UpstreamOpener
from mcp_front.backends.credential_gate import REQUEST_STATE_PURPOSE, credential_gate
from mcp_front.backends.governance import CredentialOrigin, Governance, admitted
from mcp_front.backends.inline import InlineToolRegistry
from mcp_front.backends.sandbox import Bubblewrap, gateway_files, writable_over_gateway_files
from mcp_front.backends.sse import SSEForwarder
from mcp_front.backends.stdio import StdioLimits, StdioSessionPool
from mcp_front.backends.streamable_http import StreamableHTTPForwarder
from mcp_front.backends.templating import UserTokenSource, with_static_user_tokens
from mcp_front.config import (
    ConfigError,
    ConfigIssue,
    GatewayConfig,
    ProxyConfig,
    ServerConfig,
)
from mcp_front.config.compatibility import inert_keys
from mcp_front.config.diagnostics import describe_validation_error
from mcp_front.credentials import CredentialVault
from mcp_front.credentials.injection import UserCredentials
from mcp_front.errors import MCPFrontError
from mcp_front.idp.base import IdentityProvider
from mcp_front.metrics import METRICS
from mcp_front.rate_limit import (
    LeasedRateLimiter,
    MemoryRateLimiter,
    RateLimit,
    RateLimiter,
    StoreRateLimiter,
)
from mcp_front.storage import Store
from mcp_front.transports import http
from mcp_front.transports.answer import Heartbeat
from mcp_front.transports.endpoints import ServiceEndpoints
from mcp_front.transports.forwarding import FORWARDING_PURPOSE, Forwarder, ForwardingSeal
from mcp_front.transports.replicas import ReplicaDirectory
from mcp_front.transports.replication import ForwardedRequests, SessionReplication
from mcp_front.transports.request_limits import CallerRateLimit
from mcp_front.transports.session import SessionLimits, SessionRegistry
from mcp_front.transports.session_records import SessionRecords

logger = logging.getLogger("mcp_front.gateway")

FINGERPRINT_PURPOSE = b"mcp-front static credential fingerprints"
"""What the keyring derives the key of static credentials' fingerprints for."""


@dataclass(frozen=True, slots=True)
class RevokedUser:
    """What `Gateway.revoke_user` took away."""

    grants: int
    """Refresh families (sign-ins of a client) revoked."""
    credentials: list[str]
    """The services whose credential was forgotten."""


class GatewayError(MCPFrontError):
    """A configuration the gateway cannot serve, named by its key path."""


@dataclass(frozen=True, slots=True)
class Service:
    """One entry of the routing table: a configured MCP server behind its guard."""

    name: str
    config: ServerConfig
    app: ResourceGuard


class Gateway:
    def __init__(
        self,
        config: GatewayConfig | ProxyConfig | None = None,
        *,
        backends: Iterable[BackendFactory] = (),
        authorization_server: AuthorizationServer | None = None,
        user_tokens: UserTokenSource | None = None,
        ping_interval: float = http.PING_INTERVAL,
        store: Store | None = None,
        identity_provider: IdentityProvider | None = None,
    ) -> None:
        """The gateway of `config`, or one assembled from parts.

        `backends` serve the services of their own `services` mappings, besides those of
        `config.mcpServers`; a backend built without `user_tokens` is given the gateway's
        (each signed-in user's own credentials). `authorization_server` signs users in in
        place of one built from `proxy.auth`. `store` and `identity_provider` replace
        those `proxy.auth` describes; the gateway closes only what it opened itself.
        """
        backends = list(backends)
        _refuse_adopted(backends)
        config = assembled(config, backends, authorization_server)
        if authorization_server is not None and (store is not None or identity_provider is not None):
            raise TypeError("store and identity_provider are the authorization server's: give them to it")
        if config.proxy.auth is None and authorization_server is None:
            _refuse_sign_in_parts(store=store, identity_provider=identity_provider)
        self.config = config
        proxy, servers = config.proxy, config.mcp_servers
        self.audit = AuditLog.from_config(proxy.audit)
        self.heartbeat = Heartbeat(ping_interval)
        self.origins = http.OriginPolicy([proxy.origin, *proxy.cors_allowed_origins])
        self.sessions = SessionRegistry(SessionLimits.of(proxy.sessions))
        self.authorization_server = authorization_server or (
            AuthorizationServer.of(config, store=store, idp=identity_provider)
            if proxy.auth is not None
            else None
        )
        if authorization_server is not None:
            _check_audiences(authorization_server, servers, str(proxy.base_url))
        auth = self.authorization_server
        self.replication = self._replication(auth, ping_interval)
        # The server's: shared through the store when replicas share one.
        self.limiter: RateLimiter = auth.limiter if auth is not None else MemoryRateLimiter()
        # Each caller's requests to a service: leased from the shared store, so that counting
        # them for the whole deployment costs no store round trip per request.
        shared = auth is not None and isinstance(auth.limiter, StoreRateLimiter)
        self.request_limiter: RateLimiter = LeasedRateLimiter(auth.store) if shared and auth else self.limiter
        self.vault = CredentialVault(auth.store, auth.keyring) if auth is not None else None
        self.account = (
            AccountPages(auth, self.vault, servers, base_url=proxy.base_url)
            if auth is not None and self.vault is not None
            else None
        )
        self._credential_origin: CredentialOrigin | None = None
        if user_tokens is None and self.vault is not None and self.account is not None:
            credentials = UserCredentials(self.vault, servers, self.account.connections)
            user_tokens, self._credential_origin = credentials, credentials.origin
        # Shared by replicas, so that a caller with a static credential is one caller to all.
        self._fingerprint_key = (
            auth.keyring.derived_keys(FINGERPRINT_PURPOSE)[0] if auth is not None else None
        )
        tokens = with_static_user_tokens(servers, user_tokens, fingerprint_key=self._fingerprint_key)
        self._user_tokens = tokens
        given = {name: factory for factory in backends for name in factory.services}
        hidden = gateway_files(config, auth.store if auth is not None else None)
        if exposed := writable_over_gateway_files(servers, hidden):
            raise GatewayError(exposed[0])
        for factory in backends:
            _ADOPTED.add(factory)
            if isinstance(factory, TakesUserTokens) and factory.user_tokens is None:
                factory.user_tokens = tokens
            if isinstance(factory, StdioSessionPool | InlineToolRegistry):
                factory.sandbox.hide(hidden)
        by_kind: defaultdict[str, dict[str, ServerConfig]] = defaultdict(dict)
        for name, server in servers.items():
            if name not in given:
                by_kind[server.backend_kind][name] = server
        sandbox = Bubblewrap(hidden)
        self.pool = StdioSessionPool(
            by_kind["stdio"], StdioLimits.of(proxy.sessions), user_tokens=tokens, sandbox=sandbox
        )
        self.streamable_http = StreamableHTTPForwarder(by_kind["streamable-http"], user_tokens=tokens)
        self.sse = SSEForwarder(by_kind["sse"], user_tokens=tokens)
        self.inline = InlineToolRegistry(by_kind["inline"], sandbox=sandbox)
        self.aggregates = AggregateRegistry(by_kind["aggregate"])
        built: dict[str, BackendFactory] = {
            "stdio": self.pool,
            "streamable-http": self.streamable_http,
            "sse": self.sse,
            "inline": self.inline,
            "aggregate": self.aggregates,
        }
        factory_of = {name: given.get(name) or built[server.backend_kind] for name, server in servers.items()}
        self.services: dict[str, Service] = {}
        self._endpoints: list[ServiceEndpoints] = []
        direct = {
            name: self._governed(name, factory_of[name])
            for name, server in servers.items()
            if server.backend_kind != "aggregate"
        }
        for name, opener in direct.items():
            self.services[name] = self._service(name, opener)
        # An aggregate opens each member as the member's own guard would admit its caller.
        members = {name: admitted(opener, name, self.services[name].app) for name, opener in direct.items()}
        # Each factory once, in a fixed order: the built ones, then the given ones.
        self._factories = list(dict.fromkeys([*built.values(), *backends]))
        for factory in self._factories:
            if isinstance(factory, AggregateRegistry) and not factory.members:
                factory.bind(members)
        for name, server in servers.items():
            if server.backend_kind == "aggregate":
                self.services[name] = self._service(name, self._governed(name, factory_of[name]))

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Gateway]:
        """Run the background parts; on exit every session ends and every child is gone."""
        async with AsyncExitStack() as stack:
            try:
                self.audit.open()
            except AuditLogError as exc:
                raise GatewayError(str(exc)) from exc
            stack.callback(self.audit.close)
            for factory in self._factories:
                await stack.enter_async_context(factory.run())
            await stack.enter_async_context(self.sessions.run())
            for endpoints in self._endpoints:
                # 2026-07-28 channels hold backends outside any session: end them before the backends stop.
                stack.push_async_callback(endpoints.aclose)
            background = await stack.enter_async_context(anyio.create_task_group())
            background.start_soon(self.heartbeat.run)
            METRICS.gauge(
                "mcp_front_sessions", "Open front sessions.", lambda: {(): float(len(self.sessions))}
            )
            METRICS.gauge(
                "mcp_front_stdio_processes",
                "Running stdio processes.",
                lambda: {(): float(self.pool.process_count)},
            )
            if self.vault is not None:
                background.start_soon(self.vault.run)
            stack.callback(background.cancel_scope.cancel)
            if self.authorization_server is not None:
                await stack.enter_async_context(self.authorization_server.run())
            if self.replication is not None:
                # Inside the store's lifetime: leaving the directory is its last write.
                await stack.enter_async_context(self.replication.run())
                await self.replication.join()
            if self.account is not None:
                stack.push_async_callback(self.account.aclose)
            if self.vault is not None and (resealed := await self.vault.reseal_all()):
                logger.info("re-sealed %d stored credential(s) under the current encryption key", resealed)
            for issue in inert_keys(self.config):
                logger.warning("configuration: %s", issue)
            for warning in await self.sandbox_warnings():
                logger.warning("%s", warning)
            logger.info("serving %d service(s): %s", len(self.services), ", ".join(self.services) or "none")
            yield self

    async def sandbox_warnings(self) -> list[str]:
        """What an operator must know about sandboxing here, from every backend that runs
        processes: nothing when each service that wants them sandboxed gets it."""
        warnings: list[str] = []
        for factory in self._factories:
            if isinstance(factory, StdioSessionPool | InlineToolRegistry):
                warnings += await factory.sandbox_warnings()
        running = {name: server for name, server in self.config.mcp_servers.items() if server.runs_processes}
        if running and os.geteuid() == 0:
            warnings.append(
                "the gateway runs as root: the processes it starts run as root too (without "
                "capabilities when sandboxed) and can read every file root can; run it as a user "
                "of its own"
            )
        if len(running) > 1:
            # Same user, no namespace: /proc shows it every other process of the gateway.
            warnings += [
                f"mcpServers.{name}.sandbox.enabled is false: its processes can read the environment "
                "of every other service's processes, with their secrets and users' credentials"
                for name, server in running.items()
                if not server.sandbox.enabled
            ]
        return warnings

    async def revoke_user(self, subject: str) -> RevokedUser:
        """Offboard the signed-in user `subject` (their identity provider's `sub`): every
        grant revoked, so their clients are signed out and their access tokens refused on
        every replica within a second, and every service credential of theirs forgotten,
        OAuth connections revoked at the service too."""
        server = self.authorization_server
        if server is None:
            raise GatewayError("this gateway has no proxy.auth: it keeps no users' grants")
        grants = await server.refresh_tokens.revoke_subject(subject)
        credentials: list[str] = []
        if self.vault is not None:
            removed = await self.vault.forget_user(Principal(subject=subject).key)
            credentials = sorted(removed)
            if self.account is not None:
                for credential in removed.values():
                    if credential.kind == "oauth":
                        await self.account.connections.revoke(credential)
        logger.info("revoked %d grant(s) and %d credential(s) of a user", grants, len(credentials))
        return RevokedUser(grants=grants, credentials=credentials)

    def _replication(
        self, auth: AuthorizationServer | None, ping_interval: float
    ) -> SessionReplication | None:
        """With storage shared by several replicas, how they serve each other's sessions."""
        proxy = self.config.proxy
        if auth is None or not auth.shares_store:
            return None
        try:
            directory = ReplicaDirectory(auth.store, proxy.internal_url)
        except ValueError as error:
            raise GatewayError(f"proxy.advertiseURL: {error}") from None
        return SessionReplication(
            directory,
            SessionRecords(auth.store, auth.keyring, self.sessions.limits.retention),
            ForwardingSeal(auth.keyring.derived_keys(FORWARDING_PURPOSE)),
            # A forwarded stream is never silent for longer than a ping interval.
            Forwarder(read_timeout=3 * ping_interval + 30),
            self.sessions,
        )

    def _governed(self, name: str, factory: BackendFactory) -> UpstreamOpener:
        """How a new session of `name` reaches its backend, under the service's rules."""
        server = self.config.mcp_servers[name]
        opener: UpstreamOpener = partial(factory.open, name)
        if server.user_authentication is not None and self._user_tokens is not None:
            display_name = server.user_authentication.display_name
            base_url = self.config.proxy.base_url
            auth = self.authorization_server
            # A 2026-07-28 retry may reach another replica: its request state must open there.
            state_keys = auth.keyring.derived_keys(REQUEST_STATE_PURPOSE) if auth is not None else None
            opener = credential_gate(
                opener,
                name,
                display_name,
                self._user_tokens,
                base_url,
                state_keys=state_keys,
            )
        return Governance.of(name, server, self.audit, self._credential_origin).govern(opener)

    def _service(self, name: str, opener: UpstreamOpener) -> Service:
        """The service's endpoints behind its guard: its static credentials, the gateway's
        access tokens for it, or (with neither) anyone."""
        proxy, server = self.config.proxy, self.config.mcp_servers[name]
        credentials = (
            StaticCredentials(name, server.service_auths, fingerprint_key=self._fingerprint_key)
            if server.service_auths
            else None
        )
        oauth = self.authorization_server.oauth_resource(name) if self.authorization_server else None
        if credentials is None and oauth is None:
            logger.warning("service %s accepts anonymous requests: it has no serviceAuths", name)
        endpoints = ServiceEndpoints(
            name,
            self.sessions,
            opener,
            self.origins,
            message_path=f"{proxy.base_path}/{name}/message",
            heartbeat=self.heartbeat,
            native_self_contained=server.backend_kind == "streamable-http",
            replication=self.replication,
        )
        self._endpoints.append(endpoints)
        limited: ASGIApp = endpoints
        # A service's own `rateLimit`, even `null`, takes the place of the proxy's.
        own = "rate_limit" in server.model_fields_set
        rule = server.rate_limit if own else proxy.rate_limits.mcp_requests
        if rule is not None:
            limit = RateLimit(rule.requests, rule.per)
            limited = CallerRateLimit(endpoints, service=name, limiter=self.request_limiter, limit=limit)
        if self.replication is not None:
            limited = ForwardedRequests(limited, self.replication)
        failures = proxy.rate_limits.failed_authentication
        guard = ResourceGuard(
            limited,
            service=name,
            credentials=credentials,
            oauth=oauth,
            realm=proxy.name,
            failures=None
            if failures is None
            else FailedAuthentications(self.limiter, RateLimit(failures.requests, failures.per)),
        )
        return Service(name, server, guard)


def assembled(
    config: GatewayConfig | ProxyConfig | None,
    backends: Iterable[BackendFactory],
    authorization_server: AuthorizationServer | None,
) -> GatewayConfig:
    """The whole configuration of a gateway assembled from parts: `config`'s services and
    those of `backends`, with the `proxy.auth` of `authorization_server`, checked together
    as a configuration file would be."""
    if isinstance(config, GatewayConfig):
        version, proxy, servers = config.version, config.proxy, dict(config.mcp_servers)
    elif config is None and authorization_server is not None:
        # Without a ProxyConfig, the gateway serves where its authorization server says it does.
        version, proxy, servers = None, ProxyConfig(base_url=authorization_server.audiences.base_url), {}
    else:
        version, proxy, servers = None, config or ProxyConfig(), {}
    backends = list(backends)
    if not backends and authorization_server is None and isinstance(config, GatewayConfig):
        return config
    for factory in backends:
        for name, server in factory.services.items():
            if name in servers:
                raise GatewayError(
                    f"mcpServers.{name}: served twice (by the configuration or another backend, "
                    f"and by a {type(factory).__name__}); give each service one backend"
                )
            servers[name] = server
    if authorization_server is not None:
        if proxy.auth is not None and proxy.auth != authorization_server.config:
            raise GatewayError(
                "proxy.auth: given both in the configuration and as an authorization server; keep one"
            )
        proxy = proxy.model_copy(update={"auth": authorization_server.config})
    document = {"version": version, "proxy": proxy, "mcpServers": servers}
    try:
        whole = GatewayConfig.model_validate(document)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, model=GatewayConfig, document=document)) from None
    return whole.read_from(config.files) if isinstance(config, GatewayConfig) else whole


def _check_audiences(server: AuthorizationServer, servers: Iterable[str], base_url: str) -> None:
    """Every service must have its audience at the authorization server, under the
    gateway's own base URL: otherwise none of its callers could get a token for it, or the
    gateway would send clients elsewhere and take tokens made for another place."""
    if server.audiences.base_url != normalise(base_url):
        raise GatewayError(
            f"proxy.baseURL: the authorization server's AudienceValidator is built on "
            f"{server.audiences.base_url}, the gateway serves {normalise(base_url)}; build it on the same URL"
        )
    missing = sorted(set(servers) - set(server.audiences.resources))
    if missing:
        raise GatewayError(
            f"mcpServers.{missing[0]}: the authorization server has no audience for it; "
            f"build its AudienceValidator with every service ({', '.join(missing)} missing)"
        )


_ADOPTED: weakref.WeakSet[BackendFactory] = weakref.WeakSet()
"""Backends some gateway has made its own: given its users' credentials, sandbox and members."""


def _refuse_adopted(backends: Iterable[BackendFactory]) -> None:
    """A backend serves one gateway: a second would run it with the first one's users'
    credentials, hidden files and aggregate members."""
    for factory in backends:
        if factory in _ADOPTED:
            raise GatewayError(
                f"mcpServers.{next(iter(factory.services), '?')}: this {type(factory).__name__} already "
                "serves another gateway; make one per gateway"
            )


def _refuse_sign_in_parts(*, store: Store | None, identity_provider: IdentityProvider | None) -> None:
    """Sign-in parts given to a gateway without `proxy.auth`: ignoring them would serve
    without sign-in a gateway its program meant to guard."""
    given = "identity_provider" if identity_provider is not None else "store" if store is not None else None
    if given is not None:
        raise ConfigError(
            [
                ConfigIssue(
                    "proxy.auth",
                    f"is required when the gateway is given a {given}: it is where sign-in is configured",
                    fix='add an "auth" block with "kind": "oauth" (see docs/configuration.md)',
                )
            ]
        )

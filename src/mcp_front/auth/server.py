"""`AuthorizationServer`: the gateway's OAuth 2.1 authorization server, built from its parts.

Each endpoint lives in the module of the RFC it implements; this module only owns their
shared state (store, keys, clients, codes, refresh-token families), starts and stops it,
and lays out the routes. The signing keys are loaded at start-up, so the endpoints that
need them are bound then, behind routes laid out beforehand.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp.shared.auth import OAuthClientInformationFull
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mcp_front.auth.audience import AudienceValidator, normalise
from mcp_front.auth.authorize import authorize_endpoint
from mcp_front.auth.bearer import AccessTokenVerifier
from mcp_front.auth.callback import callback_endpoint
from mcp_front.auth.client_metadata import ClientMetadataDocuments
from mcp_front.auth.client_store import StoredClients
from mcp_front.auth.codes import AuthorizationCodes
from mcp_front.auth.consent import Consents, consent_endpoint
from mcp_front.auth.rate_limits import rate_limited
from mcp_front.auth.redirect_uris import RedirectUriRules
from mcp_front.auth.refresh import RefreshTokens
from mcp_front.auth.registration import NewClientBudget, registration_endpoint
from mcp_front.auth.resource import OAuthResource
from mcp_front.auth.revocations import RevokedAccessTokens
from mcp_front.auth.rfc6749 import token_endpoint
from mcp_front.auth.rfc7009 import revocation_endpoint
from mcp_front.auth.rfc8414 import authorization_server_metadata, metadata_paths
from mcp_front.auth.rfc9728 import WELL_KNOWN, metadata_url, protected_resource_metadata
from mcp_front.auth.sign_in_hooks import AfterSignIn, SignInFlow
from mcp_front.auth.sign_in_policy import SignInPolicy
from mcp_front.auth.signing_keys import SigningKeysWatch, load_signing_keys
from mcp_front.auth.tokens import TokenIssuer
from mcp_front.config import (
    AuthConfig,
    ConfigError,
    ConfigIssue,
    GatewayConfig,
    RateLimitRule,
    RateLimitsConfig,
)
from mcp_front.crypto.keyring import Keyring
from mcp_front.idp.base import IdentityProvider
from mcp_front.idp.factory import provider_from_config
from mcp_front.rate_limit import MemoryRateLimiter, RateLimit, RateLimiter, StoreRateLimiter
from mcp_front.storage import Store, open_store
from mcp_front.storage.base import StoreUnavailable
from mcp_front.storage.notifications import NotifyingStore

logger = logging.getLogger("mcp_front.auth")

Endpoint = Callable[[Request], Awaitable[Response]]
SCOPES = ("mcp",)
TRANSPORT_ENDPOINTS = ("/mcp", "/sse")
"""A service's endpoints a client connects to; each has protected-resource metadata of its own."""
PURGE_INTERVAL = timedelta(minutes=5)
SHARED_STORAGE = frozenset({"redis", "postgres"})
"""Storage kinds several replicas use at once."""


class _UsageTrackingClients:
    """Clients as the token endpoint sees them: a successful authentication counts as use,
    so a client that obtains tokens never expires as unused."""

    def __init__(self, clients: StoredClients) -> None:
        self._clients = clients

    async def get(self, client_id: str, *, requester: str | None = None) -> OAuthClientInformationFull | None:
        return await self._clients.get(client_id, requester=requester)

    async def authenticate(
        self, client_id: str, client_secret: str | None
    ) -> OAuthClientInformationFull | None:
        client = await self._clients.authenticate(client_id, client_secret)
        if client is not None:
            await self._clients.touch(client_id)
        return client


class AuthorizationServer:
    def __init__(
        self,
        config: AuthConfig,
        *,
        store: Store,
        idp: IdentityProvider,
        audiences: AudienceValidator | None = None,
        base_url: str | None = None,
        services: Iterable[str] = (),
        token_issuer: TokenIssuer | None = None,
        client_documents: ClientMetadataDocuments | None = None,
        rate_limits: RateLimitsConfig | None = None,
        limiter: RateLimiter | None = None,
        shared_store: bool | None = None,
        owns_store: bool = False,
        owns_idp: bool = False,
    ) -> None:
        """The server for the services `audiences` names (or, without it, `services` under
        `base_url`). Users sign in at `idp`; everything is kept in `store`.

        Access tokens are signed by `token_issuer` when one is given (its keys are then
        the program's to rotate); otherwise by keys kept encrypted in `store`, or the
        configuration's `signingKey`. `shared_store` says whether several replicas share
        `store` (without it: whether the store carries notifications between processes).
        `rate_limits` (the defaults without it) are counted by `limiter`; without one, in
        `store` when replicas share it, else in this process. With `owns_store` and
        `owns_idp`, `run()` closes them as it ends."""
        if audiences is None:
            if base_url is None:
                raise TypeError("AuthorizationServer needs audiences, or a base_url and services")
            audiences = AudienceValidator(base_url, services)
        if token_issuer is not None and normalise(token_issuer.issuer) != normalise(config.issuer):
            raise ValueError(
                f"the token issuer signs for {token_issuer.issuer}, "
                f"not for this server's issuer {config.issuer}"
            )
        self.config = config
        self._owned = (owns_store, owns_idp)
        self.issuer = config.issuer
        self.rate_limits = rate_limits if rate_limits is not None else RateLimitsConfig()
        self.shares_store = isinstance(store, NotifyingStore) if shared_store is None else shared_store
        """Whether several replicas share the store, and with it limits, revocations and sessions."""
        if limiter is None:
            limiter = StoreRateLimiter(store) if self.shares_store else MemoryRateLimiter()
        self.limiter = limiter
        self.redirect_rules = RedirectUriRules(allowed_hosts=tuple(config.allowed_redirect_uri_hosts))
        self.store = store
        self.idp = _checked_provider(idp)
        self.audiences = audiences
        self.keyring = Keyring.from_secret(
            config.encryption_key.get_secret_value(),
            previous=[key.get_secret_value() for key in config.previous_encryption_keys],
        )
        self._metadata_http = _metadata_http_client() if client_documents is None else None
        documents = client_documents or ClientMetadataDocuments(
            self._metadata_http,
            allow_private_addresses=config.allow_private_client_metadata_hosts,
            redirect_rules=self.redirect_rules,
            limiter=self.limiter,
            fetches=_limit(self.rate_limits.client_metadata_fetches),
            fetches_per_requester=_limit(self.rate_limits.client_metadata_fetches_per_address),
        )
        self.clients = StoredClients(store, metadata_documents=documents)
        self.codes = AuthorizationCodes(store)
        self.revoked = RevokedAccessTokens(store, access_token_ttl=config.token_ttl)
        self.refresh_tokens = RefreshTokens(
            store, ttl=config.refresh_token_ttl, revoked_access_tokens=self.revoked
        )
        self.sign_in_policy = SignInPolicy.of(
            allowed_domains=config.allowed_domains,
            allowed_emails=config.allowed_emails,
            allowed_orgs=config.allowed_orgs,
            allowed_groups=config.allowed_groups,
            require_verified_email=config.require_verified_email,
        )
        self.consents = Consents(store)
        self.sign_in_flows: list[SignInFlow] = []
        """Other sign-ins finishing at the identity provider's callback (the gateway's pages)."""
        self.after_sign_in: list[AfterSignIn] = []
        """What sees an MCP client's completed sign-in before the browser goes back to it."""
        callback_url = config.callback_url
        issuer_path = urlsplit(self.issuer).path.rstrip("/")
        self._authorize = authorize_endpoint(
            clients=self.clients,
            store=store,
            idp=idp,
            audiences=self.audiences,
            issuer=self.issuer,
            callback_url=callback_url,
            resource_fallback=config.resource_fallback,
            trusted_clients=frozenset(config.trusted_clients),
            redirect_rules=self.redirect_rules,
        )
        self._callback = callback_endpoint(
            store=store,
            idp=idp,
            policy=self.sign_in_policy,
            codes=self.codes,
            consents=self.consents,
            trusted_clients=frozenset(config.trusted_clients),
            issuer=self.issuer,
            clients=self.clients,
            callback_url=callback_url,
            consent_path=f"{issuer_path}/oauth/consent",
            other_flows=self.sign_in_flows,
            after_sign_in=self.after_sign_in,
        )
        self._consent = consent_endpoint(
            store=store,
            codes=self.codes,
            consents=self.consents,
            issuer=self.issuer,
            after_sign_in=self.after_sign_in,
        )
        # Revocations are known in memory, kept current by notifications: nothing to cache.
        self.verifier = AccessTokenVerifier(
            lambda: self.token_issuer, is_revoked=self.revoked.is_revoked, revocation_cache_seconds=0
        )
        self._token_issuer: TokenIssuer | None = None
        self._given_token_issuer = token_issuer
        self._bound: dict[str, Endpoint] = {}

    @classmethod
    def of(
        cls,
        config: GatewayConfig,
        *,
        store: Store | None = None,
        idp: IdentityProvider | None = None,
        limiter: RateLimiter | None = None,
    ) -> AuthorizationServer:
        """The server `proxy.auth` describes, for the services of `config`. `store` and `idp`
        replace those it names; the server closes only those it opened itself."""
        auth = config.proxy.auth
        if auth is None:
            raise ValueError("the configuration has no proxy.auth to build an authorization server from")
        if idp is None and auth.idp is not None:
            idp_in_use, owns_idp = provider_from_config(auth.idp), True
        elif idp is not None:
            idp_in_use, owns_idp = idp, False
        else:
            raise ConfigError(
                [
                    ConfigIssue(
                        "proxy.auth.idp",
                        "is required: it says where users sign in",
                        fix='add an "idp" block (see docs/identity-providers.md), or pass an '
                        "IdentityProvider to create_app(identity_provider=...)",
                    )
                ]
            )
        store_in_use = store if store is not None else open_store(auth.storage)
        return cls(
            auth,
            base_url=config.proxy.base_url,
            services=config.mcp_servers,
            store=store_in_use,
            idp=idp_in_use,
            rate_limits=config.proxy.rate_limits,
            limiter=limiter,
            shared_store=auth.storage.kind in SHARED_STORAGE or isinstance(store_in_use, NotifyingStore),
            owns_store=store is None,
            owns_idp=owns_idp,
        )

    @property
    def token_issuer(self) -> TokenIssuer:
        if self._token_issuer is None:
            raise RuntimeError(
                "the authorization server has not started: run it inside AuthorizationServer.run()"
            )
        return self._token_issuer

    @asynccontextmanager
    async def run(self) -> AsyncIterator[AuthorizationServer]:
        """Prepare the identity provider, load the signing keys and bind the endpoints; purge
        expired state while running."""
        async with AsyncExitStack() as stack:
            owns_store, owns_idp = self._owned
            if owns_store:
                stack.push_async_callback(self.store.aclose)
            if owns_idp:
                stack.push_async_callback(self.idp.aclose)
            # Sign-in needs the provider's endpoints; fail at start, not at a user's first login.
            await self.idp.discover()
            yield await stack.enter_async_context(self._serving())

    @asynccontextmanager
    async def _serving(self) -> AsyncIterator[AuthorizationServer]:
        signing_pem = self.config.signing_key.get_secret_value() if self.config.signing_key else None
        if self._given_token_issuer is not None:
            self._token_issuer = self._given_token_issuer
        else:
            keys = await load_signing_keys(self.store, self.keyring, configured_pem=signing_pem)
            self._token_issuer = TokenIssuer(keys, self.issuer, access_token_ttl=self.config.token_ttl)
        self._bind_endpoints(self._token_issuer)
        logger.info(
            "authorization server %s signing with key %s", self.issuer, self._token_issuer.keys.current.kid
        )
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(self._purge)
            task_group.start_soon(self.revoked.run)
            if signing_pem is None and self._given_token_issuer is None:
                watch = SigningKeysWatch(self.store, self.keyring, self._token_issuer)
                task_group.start_soon(watch.run)
            try:
                yield self
            finally:
                task_group.cancel_scope.cancel()
                if self._metadata_http is not None:
                    await self._metadata_http.aclose()

    def oauth_resource(self, service: str) -> OAuthResource:
        resource = self.audiences.resource_for(service)
        return OAuthResource(
            resource=resource,
            metadata_url=metadata_url(resource),
            verifier=self.verifier,
            scope=" ".join(SCOPES),
            endpoint_metadata={
                endpoint: metadata_url(resource + endpoint) for endpoint in TRANSPORT_ENDPOINTS
            },
        )

    def routes(self, *, mounted_at: str = "") -> list[BaseRoute]:
        """Every route of the server, with paths relative to the issuer's host.

        An app served under `mounted_at` (the path of the gateway's base URL) receives
        requests below it with that prefix removed, so it is removed here too; the
        well-known documents at the host's root keep their paths.
        """

        def at(path: str) -> str:
            return path.removeprefix(mounted_at) if mounted_at and path.startswith(mounted_at + "/") else path

        base = urlsplit(self.issuer).path.rstrip("/")
        routes: list[BaseRoute] = [
            Route(at(path), self._authorization_server_metadata, methods=["GET"])
            for path in metadata_paths(self.issuer)
        ]
        limits, limiter = self.rate_limits, self.limiter
        budget = NewClientBudget(
            limiter, per_address=_limit(limits.new_clients), overall=_limit(limits.new_clients_overall)
        )
        register = registration_endpoint(self.clients, budget, redirect_rules=self.redirect_rules)
        routes += [
            Route(at(f"{base}/.well-known/jwks.json"), self._jwks, methods=["GET"]),
            Route(
                at(f"{base}/authorize"),
                rate_limited(self._authorize, limiter, _limit(limits.authorize), "authorize", page=True),
                methods=["GET", "POST"],
            ),
            Route(at(f"{base}/oauth/callback"), self._callback, methods=["GET"]),
            Route(at(f"{base}/oauth/consent"), self._consent, methods=["POST"]),
            Route(
                at(f"{base}/register"),
                rate_limited(register, limiter, _limit(limits.registration), "register"),
                methods=["POST"],
            ),
            Route(
                at(f"{base}/token"),
                rate_limited(self._deferred("token"), limiter, _limit(limits.token), "token"),
                methods=["POST"],
            ),
            Route(
                at(f"{base}/revoke"),
                rate_limited(self._deferred("revoke"), limiter, _limit(limits.revoke), "revoke"),
                methods=["POST"],
            ),
        ]
        routes += [
            Route(at(path), endpoint, methods=["GET"]) for path, endpoint in self._protected_resources()
        ]
        return routes

    def _protected_resources(self) -> list[tuple[str, Endpoint]]:
        """RFC 9728 documents: one for each service's resource and for its /mcp and /sse
        URLs, each naming the identifier its URL was built from."""
        documents = []
        for resource in self.audiences.resources.values():
            for identifier in (resource, *(resource + endpoint for endpoint in TRANSPORT_ENDPOINTS)):
                document = protected_resource_metadata(
                    identifier, authorization_server=self.issuer, scopes_supported=SCOPES
                )
                documents.append((WELL_KNOWN + urlsplit(identifier).path, _json_endpoint(document)))
        return documents

    def _bind_endpoints(self, issuer: TokenIssuer) -> None:
        clients = _UsageTrackingClients(self.clients)
        self._bound["token"] = token_endpoint(
            clients=clients,
            codes=self.codes,
            refresh_tokens=self.refresh_tokens,
            issuer=issuer,
            audiences=self.audiences,
            revoked=self.revoked,
            refresh_token_scopes=frozenset(self.config.refresh_token_scopes),
        )
        self._bound["revoke"] = revocation_endpoint(
            clients=clients, refresh_tokens=self.refresh_tokens, issuer=issuer, revoked=self.revoked
        )

    def _deferred(self, name: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return await self._bound[name](request)

        return endpoint

    async def _authorization_server_metadata(self, request: Request) -> Response:
        return JSONResponse(authorization_server_metadata(self.issuer, scopes_supported=SCOPES))

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(self.token_issuer.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})

    async def revoke_client(self, client_id: str) -> bool:
        """Forget a registered client and refuse every access token issued to it, on every
        replica; its refresh tokens stop working with it. True if the client existed."""
        await self.revoked.revoke_client(client_id)
        return await self.clients.delete(client_id)

    async def _purge(self) -> None:
        while True:
            await anyio.sleep(PURGE_INTERVAL.total_seconds())
            try:
                purged = await self.store.purge_expired()
            except StoreUnavailable:
                logger.warning("expired entries not purged: the store is unreachable; trying again later")
                continue
            if purged:
                logger.debug("purged %d expired entries", purged)


def _checked_provider(idp: IdentityProvider) -> IdentityProvider:
    """`idp`, if it has every method the server calls; a provider written before `discover`
    and `aclose` were part of the protocol is told how to get them, at once."""
    missing = [
        name for name in ("authorization_url", "complete", "discover", "aclose") if not hasattr(idp, name)
    ]
    if missing:
        raise TypeError(
            f"identity provider {type(idp).__name__} has no {', '.join(missing)}: subclass "
            "mcp_front.IdentityProvider, which provides discover() and aclose() with default behaviour"
        )
    return idp


def _limit(rule: RateLimitRule | None) -> RateLimit | None:
    return None if rule is None else RateLimit(rule.requests, rule.per)


def _metadata_http_client() -> httpx2.AsyncClient:
    """The client that fetches client metadata documents.

    It ignores proxy settings from the environment (the SSRF guard must see the real
    destination) but trusts the CA bundle the environment names, as other TLS clients of
    the host do.
    """
    context = ssl.create_default_context(
        cafile=os.environ.get("SSL_CERT_FILE"), capath=os.environ.get("SSL_CERT_DIR")
    )
    return httpx2.AsyncClient(trust_env=False, verify=context, follow_redirects=False)


def _json_endpoint(document: dict[str, object]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return JSONResponse(document)

    return endpoint

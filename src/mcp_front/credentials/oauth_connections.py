"""OAuth connections: a user connects their account at a service (`userAuthentication.type:
"oauth"`), and the gateway keeps the tokens working.

Connecting is an authorization code flow with PKCE (S256). Its state is random, single use
(taken from the store), ten minutes long, and bound to the user and to the browser session
that started it; the service sends the browser back to `/oauth/callback/<service>`.

Refreshing happens shortly before the access token expires, **once per user and service
at a time in the whole deployment**: concurrent requests in one process wait on a lock, and
the replicas sharing a store take a lease in it (`credentials.refreshing`), so a rotating
refresh token is spent once. Whoever waits uses the token it has while that still works,
or else waits for the lease and then reads the renewed one.
The refreshed tokens are stored (compare-and-set against what was read) before anyone
uses them, so a rotated refresh token is never lost: the one that was spent is never
sent again. A provider's permanent refusal (`invalid_grant`, or any 4xx) marks the
credential expired ("reconnect"); an outage keeps it, marks it in error, and the caller is
told the service cannot be reached. Disconnecting revokes the tokens at the provider
(RFC 7009) when it has a revocation endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote_plus, urlencode

import anyio
import httpx2

from mcp_front.config import OAuthUserAuthentication, ServerConfig
from mcp_front.credentials.providers import EndpointsSource, ProviderEndpoints, configured_endpoints
from mcp_front.credentials.records import Credential
from mcp_front.credentials.vault import CredentialVault, SealedCredential
from mcp_front.crypto import digest, random_token
from mcp_front.errors import MCPFrontError
from mcp_front.metrics import UPSTREAM_REFRESHES
from mcp_front.storage import Store, StoreUnavailable
from mcp_front.storage.records import JSONRecord

__all__ = [
    "CONNECTS_NAMESPACE",
    "REFRESHING_NAMESPACE",
    "CallbackResult",
    "GrantRefused",
    "OAuthConnections",
    "ServiceUnreachable",
    "callback_path",
]

logger = logging.getLogger(__name__)

CONNECTS_NAMESPACE = "credentials.connects"
CONNECT_TTL = timedelta(minutes=10)
REFRESH_MARGIN = 60.0
"""Seconds before expiry at which an access token is refreshed."""
RETRY_AFTER = 30.0
"""Seconds a failed refresh is not retried while the access token still works."""
_TIMEOUT = 15.0
REFRESHING_NAMESPACE = "credentials.refreshing"
LEASE_TTL = timedelta(seconds=4 * _TIMEOUT)
"""How long a refresh may hold its lease: past the HTTP calls it makes (discovery, then the
token request), so a lease ends early only when its holder died."""
_LEASE_POLL = 0.1


class ServiceUnreachable(MCPFrontError):
    """A service's token endpoint could not be used (down, failing, or not speaking JSON)."""


class GrantRefused(MCPFrontError):
    """A service's token endpoint refused a grant for good (a 4xx other than 429)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def callback_path(service: str) -> str:
    """Where a service sends the browser back (the Go mcp-front's path)."""
    return f"/oauth/callback/{service}"


@dataclass(frozen=True, slots=True)
class _PendingConnect(JSONRecord):
    user: str
    service: str
    browser: str
    code_verifier: str
    next: str
    created_at: float


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """How a connection ended: `message` is one of the token page's message codes."""

    service: str
    message: str
    next: str


class OAuthConnections:
    def __init__(
        self,
        vault: CredentialVault,
        servers: Mapping[str, ServerConfig],
        *,
        store: Store,
        base_url: str,
        http: httpx2.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._vault = vault
        self._store = store
        self._base_url = base_url.rstrip("/")
        configured = {
            name: configured_endpoints(server.user_authentication)
            for name, server in servers.items()
            if server.requires_user_token and isinstance(server.user_authentication, OAuthUserAuthentication)
        }
        self.services: dict[str, str] = {
            name: endpoints.display_name for name, endpoints in configured.items()
        }
        """The services users connect with an OAuth sign-in, and their display names."""
        self._configured = configured
        self._discovered: EndpointsSource | None = None
        self.http = http or httpx2.AsyncClient(timeout=_TIMEOUT, follow_redirects=False, trust_env=False)
        """The client of every call to the services' OAuth servers."""
        self._clock = clock
        self._refreshing: dict[tuple[str, str], anyio.Lock] = {}
        self.refresh_margin = REFRESH_MARGIN
        """Seconds before expiry at which an access token is renewed."""

    def discover_with(self, source: EndpointsSource, services: Mapping[str, str]) -> None:
        """Also connect `services` (name to display name), whose endpoints `source` finds."""
        self._discovered = source
        self.services.update(services)

    async def authorization_urls(self) -> list[str]:
        """The authorization endpoints a Connect button may lead to (those that can be found now)."""
        found = []
        for service in self.services:
            try:
                found.append((await self.endpoints(service)).authorization_url)
            except ServiceUnreachable:
                continue
        return found

    async def endpoints(self, service: str) -> ProviderEndpoints:
        configured = self._configured.get(service)
        if configured is not None:
            return configured
        if self._discovered is None or service not in self.services:
            raise KeyError(service)
        return await self._discovered(service)

    def redirect_uri(self, service: str) -> str:
        return self._base_url + callback_path(service)

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- connecting ----------------------------------------------------------------------

    async def start(self, user: str, service: str, *, browser: str, next_page: str) -> str:
        """The service's authorization URL for `user`, whose browser session is `browser`."""
        settings = await self.endpoints(service)
        state = random_token(32)
        pending = _PendingConnect(
            user=user,
            service=service,
            browser=browser,
            code_verifier=random_token(48),
            next=next_page,
            created_at=self._clock(),
        )
        await self._store.put(CONNECTS_NAMESPACE, digest(state).hex(), pending.to_bytes(), ttl=CONNECT_TTL)
        query = {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": self.redirect_uri(service),
            "state": state,
            "code_challenge": _challenge(pending.code_verifier),
            "code_challenge_method": "S256",
            **({"scope": " ".join(settings.scopes)} if settings.scopes else {}),
            **({"resource": settings.resource} if settings.resource else {}),
        }
        separator = "&" if "?" in settings.authorization_url else "?"
        return f"{settings.authorization_url}{separator}{urlencode(query)}"

    async def finish(
        self, service: str, params: Mapping[str, str], *, user: str, browser: str
    ) -> CallbackResult | None:
        """The service's answer at the callback; None when the state is unknown, used,
        expired, or another user's or browser's (nothing is stored then)."""
        state = params.get("state")
        if not state or len(state) > 512:
            return None
        key = digest(state).hex()
        raw = await self._store.get(CONNECTS_NAMESPACE, key)
        if raw is None:
            return None
        pending = _PendingConnect.from_bytes(raw)
        fresh = self._clock() < pending.created_at + CONNECT_TTL.total_seconds()
        if not fresh or pending.service != service or pending.user != user or pending.browser != browser:
            return None
        # Used up only by its owner, and only once (of two concurrent callbacks, one wins).
        if not await self._store.compare_and_set(CONNECTS_NAMESPACE, key, raw, None):
            return None
        if params.get("error") == "access_denied":
            return CallbackResult(service, "connect-cancelled", pending.next)
        if params.get("error") or not params.get("code"):
            return CallbackResult(service, "connect-refused", pending.next)
        try:
            settings = await self.endpoints(service)
            tokens = await self._token_request(
                settings,
                {
                    "grant_type": "authorization_code",
                    "code": params["code"],
                    "redirect_uri": self.redirect_uri(service),
                    "code_verifier": pending.code_verifier,
                    **({"resource": settings.resource} if settings.resource else {}),
                },
            )
        except GrantRefused:
            return CallbackResult(service, "connect-refused", pending.next)
        except ServiceUnreachable:
            return CallbackResult(service, "connect-unreachable", pending.next)
        credential = self._credential(service, tokens, previous_refresh=None)
        if credential is None:
            return CallbackResult(service, "connect-refused", pending.next)
        await self._vault.put(user, credential)
        return CallbackResult(service, "connected", pending.next)

    # -- keeping it working ----------------------------------------------------------------

    async def usable(self, user: str, service: str, credential: Credential) -> Credential:
        """`credential`, refreshed first if it expires soon; one refresh per user and
        service at a time. Raises `ServiceUnreachable` when the service cannot be reached and
        the token is no longer usable."""
        now = self._clock()
        if credential.kind != "oauth" or not credential.expires_within(self.refresh_margin, now):
            return credential
        try:
            return await self._renewed(user, service, credential)
        except StoreUnavailable:
            # Neither coordinated nor kept, a renewal now could lose a rotated token.
            if credential.expires_at is not None and credential.expires_at > self._clock():
                return credential
            raise

    async def _renewed(self, user: str, service: str, credential: Credential) -> Credential:
        lock = self._refreshing.setdefault((user, service), anyio.Lock())
        async with lock, self._lease(user, service, credential) as leased:
            if not leased:
                return credential  # another replica renews it; this one still works meanwhile
            loaded = await self._vault.load(user, service, fresh=True)
            if loaded is None:
                return credential
            current = loaded.credential
            now = self._clock()
            if current.state == "expired" or not current.expires_within(self.refresh_margin, now):
                return current
            recently_failed = current.state == "error" and now - current.updated_at < RETRY_AFTER
            if recently_failed and current.expires_at is not None and current.expires_at > now:
                return current
            return await self._refresh(user, loaded)

    @asynccontextmanager
    async def _lease(self, user: str, service: str, credential: Credential) -> AsyncIterator[bool]:
        """Hold the deployment's one right to renew `user`'s credential for `service`.

        Yields False, without waiting, when another holds it and `credential` still works;
        otherwise waits for it (a holder that died loses it after `LEASE_TTL`).
        """
        key = digest(f"{user}\x00{service}").hex()
        holder = random_token()
        while not await self._store.add(REFRESHING_NAMESPACE, key, holder.encode(), ttl=LEASE_TTL):
            if credential.expires_at is not None and credential.expires_at > self._clock():
                yield False
                return
            await anyio.sleep(_LEASE_POLL)
        try:
            yield True
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self._store.compare_and_set(REFRESHING_NAMESPACE, key, holder.encode(), None)
                except StoreUnavailable:
                    logger.warning("a refresh lease could not be released; it lapses by itself")

    async def _refresh(self, user: str, loaded: SealedCredential) -> Credential:
        current = loaded.credential
        if current.service not in self.services or current.refresh_token is None:
            return await self._expire(user, loaded, "The service gave no way to renew access: reconnect it.")
        try:
            settings = await self.endpoints(current.service)
            form = {"grant_type": "refresh_token", "refresh_token": current.refresh_token}
            if settings.resource:
                form["resource"] = settings.resource
            tokens = await self._token_request(settings, form)
        except GrantRefused:
            UPSTREAM_REFRESHES.inc(current.service, "refused")
            return await self._expire(
                user, loaded, "The service no longer accepts this connection: reconnect it."
            )
        except ServiceUnreachable:
            UPSTREAM_REFRESHES.inc(current.service, "unreachable")
            now = self._clock()
            marked = current.marked(
                "error", f"{self.services[current.service]} could not be reached to renew access.", now
            )
            await self._vault.swap(user, loaded, marked)
            if current.expires_at is not None and current.expires_at > now:
                return current
            raise
        renewed = self._credential(current.service, tokens, previous_refresh=current.refresh_token)
        if renewed is None:
            return await self._expire(user, loaded, "The service answered without a token: reconnect it.")
        if not await self._vault.swap(user, loaded, renewed):
            # Another writer (a replica, or a reconnect) changed it first: theirs stands.
            reread = await self._vault.load(user, current.service, fresh=True)
            return reread.credential if reread is not None else renewed
        UPSTREAM_REFRESHES.inc(current.service, "renewed")
        logger.info("renewed the %s credential of a user", current.service)
        return renewed

    async def _expire(self, user: str, loaded: SealedCredential, problem: str) -> Credential:
        expired = loaded.credential.marked("expired", problem, self._clock())
        await self._vault.swap(user, loaded, expired)
        return expired

    # -- disconnecting ---------------------------------------------------------------------

    async def revoke(self, credential: Credential) -> bool:
        """Revoke `credential`'s tokens at the service (RFC 7009); whether it confirmed."""
        if credential.service not in self.services:
            return False
        try:
            settings = await self.endpoints(credential.service)
        except ServiceUnreachable:
            return False
        if settings.revocation_url is None:
            return False
        confirmed = True
        for token, hint in (
            (credential.refresh_token, "refresh_token"),
            (credential.access_token, "access_token"),
        ):
            if token is None:
                continue
            data, headers = self._client_authentication(settings, {"token": token, "token_type_hint": hint})
            try:
                response = await self.http.post(settings.revocation_url, data=data, headers=headers)
            except httpx2.HTTPError:
                confirmed = False
                continue
            confirmed = confirmed and response.status_code == 200
        return confirmed

    # -- the token endpoint ----------------------------------------------------------------

    async def _token_request(self, settings: ProviderEndpoints, form: dict[str, str]) -> dict[str, Any]:
        data, headers = self._client_authentication(settings, form)
        headers["Accept"] = "application/json"
        try:
            response = await self.http.post(settings.token_url, data=data, headers=headers)
        except httpx2.HTTPError:
            raise ServiceUnreachable(f"{settings.display_name} could not be reached") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ServiceUnreachable(f"{settings.display_name} failed (HTTP {response.status_code})")
        if response.status_code >= 400:
            raise GrantRefused(response.status_code)
        try:
            body = response.json()
        except ValueError:
            raise ServiceUnreachable(
                f"{settings.display_name} answered with something other than JSON"
            ) from None
        if not isinstance(body, dict):
            raise ServiceUnreachable(
                f"{settings.display_name} answered with something other than a JSON object"
            )
        return body

    def _client_authentication(
        self, settings: ProviderEndpoints, form: dict[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        secret = settings.client_secret
        if secret is None or settings.client_authentication == "none":
            return {**form, "client_id": settings.client_id}, {}
        if settings.client_authentication == "client_secret_post":
            return {**form, "client_id": settings.client_id, "client_secret": secret}, {}
        # RFC 6749 §2.3.1: both parts form-urlencoded before they are joined.
        pair = f"{_form_encode(settings.client_id)}:{_form_encode(secret)}"
        basic = base64.b64encode(pair.encode()).decode()
        return {**form, "client_id": settings.client_id}, {"Authorization": f"Basic {basic}"}

    def _credential(
        self, service: str, tokens: Mapping[str, Any], *, previous_refresh: str | None
    ) -> Credential | None:
        access = tokens.get("access_token")
        if not isinstance(access, str) or not access:
            return None
        refresh = tokens.get("refresh_token")
        expires_in = tokens.get("expires_in")
        now = self._clock()
        scope = tokens.get("scope")
        return Credential(
            service=service,
            kind="oauth",
            access_token=access,
            updated_at=now,
            # A provider that does not rotate keeps the refresh token it gave before.
            refresh_token=refresh if isinstance(refresh, str) and refresh else previous_refresh,
            expires_at=now + float(expires_in)
            if isinstance(expires_in, int | float) and expires_in > 0
            else None,
            scope=scope if isinstance(scope, str) else None,
        )


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _form_encode(value: str) -> str:
    return quote_plus(value)

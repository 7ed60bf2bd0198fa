"""`ResourceGuard`: the resource-server side of every `/<service>/…` route.

It decides the `Principal` once, puts it in `scope["user"]`, and answers every
unauthenticated request with an RFC 6750 / RFC 9728 challenge instead of passing it on.
A service may accept both the gateway's OAuth access tokens and its own static
`serviceAuths`; static bearer tokens are checked first, since that costs one hash.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.auth.bearer import AccessTokenVerifier
from mcp_front.auth.principal import ANONYMOUS, Principal
from mcp_front.auth.service_auth import StaticCredentials
from mcp_front.crypto import digest
from mcp_front.metrics import RATE_LIMITED
from mcp_front.rate_limit import RateLimit, RateLimiter, address_key


@dataclass(frozen=True, slots=True)
class OAuthResource:
    """How a service takes the gateway's OAuth access tokens."""

    resource: str
    """The service's RFC 8707 resource identifier: the audience its tokens carry."""
    metadata_url: str
    """Its RFC 9728 protected-resource metadata, named in challenges outside its endpoints."""
    verifier: AccessTokenVerifier
    scope: str | None = None
    endpoint_metadata: Mapping[str, str] = field(default_factory=dict)
    """Endpoint path (``/mcp``, ``/sse``) → the metadata of exactly that URL, whose
    `resource` is the URL a client connected to: strict clients compare the two."""

    def metadata_for(self, endpoint: str) -> str:
        return self.endpoint_metadata.get(endpoint, self.metadata_url)


class FailedAuthentications:
    """Attempts with static credentials not known to be right, counted per address by
    `limiter` (shared by the replicas when they share a store) *before* they are checked,
    so that requests sent all at once cannot outrun the count.

    A credential that proved right is remembered (by its digest), and later requests with
    it are not counted: a caller with a right credential costs no round trip to a shared
    store. An address refused is held back in this process's memory for as long as the
    limiter said, so a flood past the limit costs the store nothing either.
    """

    __slots__ = ("_clock", "_held", "_vouched", "limit", "limiter")

    def __init__(
        self, limiter: RateLimiter, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limiter = limiter
        self.limit = limit
        self._clock = clock
        self._held: OrderedDict[str, float] = OrderedDict()
        self._vouched: OrderedDict[bytes, None] = OrderedDict()

    def vouched(self, authorization: str) -> bool:
        """Whether this exact `Authorization` value proved to be a right static credential."""
        return digest(authorization) in self._vouched

    def vouch(self, authorization: str) -> None:
        self._vouched[digest(authorization)] = None
        while len(self._vouched) > _MAX_VOUCHED:
            self._vouched.popitem(last=False)

    def held_back(self, scope: Scope) -> float:
        """The seconds the request's address is still held back (0: it is not), from memory."""
        until = self._held.get(self._key(scope))
        return 0.0 if until is None else max(0.0, until - self._clock())

    async def admit(self, scope: Scope) -> float:
        """Count one attempt of the request's address: 0 if it may have its credential
        checked, else the seconds it is held back (nothing is checked then)."""
        key = self._key(scope)
        if (held := self.held_back(scope)) > 0:
            return held
        wait = await self.limiter.acquire(key, self.limit)
        if wait > 0:
            self._held[key] = self._clock() + wait
            self._held.move_to_end(key)
            while len(self._held) > _MAX_HELD:
                self._held.popitem(last=False)
        return wait

    @staticmethod
    def _key(scope: Scope) -> str:
        client = scope.get("client")
        return f"failed-authentication:{address_key(client[0] if client else None)}"


_MAX_VOUCHED = 1024
"""Right credentials remembered at once (a deployment configures a handful)."""
_MAX_HELD = 100_000
"""Addresses held back at once, at most: the oldest are forgotten past it."""


async def _too_many_failures(send: Send, wait: float) -> None:
    RATE_LIMITED.inc("failedAuthentication")
    retry = str(max(1, math.ceil(wait)))
    payload = json.dumps(
        {
            "error": "too_many_requests",
            "error_description": f"Too many requests with wrong credentials; retry in {retry} seconds",
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
        (b"retry-after", retry.encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class ResourceGuard:
    """ASGI middleware admitting only authenticated callers to one service."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        credentials: StaticCredentials | None,
        oauth: OAuthResource | None = None,
        realm: str = "mcp-front",
        failures: FailedAuthentications | None = None,
    ) -> None:
        """`failures`, when given, counts requests whose credentials are wrong per address;
        past its limit, that address's static credentials are not checked at all (429)
        until it slows down, so they cannot be guessed. The gateway's own access tokens
        cannot be guessed, and are still checked."""
        self.app = app
        self.service = service
        self._credentials = credentials
        self._oauth = oauth
        self._realm = realm
        self._failures = failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # No endpoint of a service speaks WebSocket: refuse rather than pass it on unguarded.
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["mcp_front.service"] = self.service
        headers = Headers(scope=scope)
        if self._credentials is None and self._oauth is None:
            principal: Principal | None = ANONYMOUS
        elif "authorization" not in headers:
            principal = None
        else:
            authorization = headers["authorization"]
            failures = self._failures if self._credentials is not None else None
            if self._signed_here(authorization):
                # One of the gateway's own access tokens cannot be guessed: always checked,
                # never counted, and never taken for a static credential.
                principal = await self.authenticate(headers, static=False)
            elif failures is not None:
                # Held back, no static credential is checked at all: a guesser learns nothing.
                # Otherwise one not known to be right may be a guess: counted before it is
                # checked, so that requests sent at once cannot outrun the count.
                held = failures.held_back(scope)
                wait = held if held > 0 or failures.vouched(authorization) else await failures.admit(scope)
                if wait > 0:
                    await _too_many_failures(send, wait)
                    return
                principal = await self.authenticate(headers)
                if principal is not None and principal.kind == "service":
                    failures.vouch(authorization)
            else:
                principal = await self.authenticate(headers)
        if principal is None:
            await self._challenge(scope, send)
            return
        scope["user"] = principal
        await self.app(scope, receive, send)

    def admits(self, principal: Principal) -> bool:
        """Whether this guard would let in `principal`, proven at another guard (an aggregate's,
        in front of this service): anyone when the service is open, a signed-in user when it
        takes the gateway's access tokens, and a caller with one of its static credentials."""
        if self._credentials is None and self._oauth is None:
            return True
        if principal.kind == "user" and self._oauth is not None:
            return True
        return self._credentials is not None and self._credentials.admits(principal)

    async def authenticate(self, headers: Headers, *, static: bool = True) -> Principal | None:
        """The caller the request's `Authorization` proves; with `static` False, only the
        gateway's own access tokens are checked, never a static credential."""
        if self._credentials is None and self._oauth is None:
            return ANONYMOUS
        authorization = headers.get("authorization")
        if not authorization:
            return None
        if static and self._credentials is not None:
            principal = self._credentials.authenticate(authorization)
            if principal is not None:
                return principal
        scheme, _, token = authorization.partition(" ")
        if self._oauth is not None and scheme.lower() == "bearer" and token.strip():
            return await self._oauth.verifier.verify(token.strip(), self._oauth.resource)
        return None

    def _signed_here(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if self._oauth is None or scheme.lower() != "bearer":
            return False
        return self._oauth.verifier.signed_here(token.strip())

    def _schemes(self) -> list[str]:
        schemes = list(self._credentials.schemes) if self._credentials is not None else []
        if self._oauth is not None and "Bearer" not in schemes:
            schemes.insert(0, "Bearer")
        return schemes

    async def _challenge(self, scope: Scope, send: Send) -> None:
        sent_credentials = "authorization" in Headers(scope=scope)
        schemes = self._schemes()
        challenges = []
        for scheme in schemes:
            params = [f'realm="{self._realm}"']
            if scheme == "Bearer" and self._oauth is not None:
                metadata = self._oauth.metadata_for(_endpoint_of(scope))
                params.append(f'resource_metadata="{metadata}"')
                if self._oauth.scope:
                    params.append(f'scope="{self._oauth.scope}"')
            if sent_credentials and scheme == "Bearer":
                params.append('error="invalid_token"')
                params.append('error_description="The access token is invalid"')
            challenges.append(f"{scheme} {', '.join(params)}")
        if sent_credentials:
            body = {
                "error": "invalid_token",
                "error_description": "The credentials are not valid for this service",
            }
        else:
            body = {
                "error": "unauthorized",
                "error_description": (
                    f"Service '{self.service}' requires credentials ({' or '.join(schemes)})"
                ),
            }
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"cache-control", b"no-store"),
            *((b"www-authenticate", c.encode()) for c in challenges),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _endpoint_of(scope: Scope) -> str:
    """The path below the service, e.g. ``/mcp``, of a request to ``/<service>/mcp``."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    suffix = path[len(root) :] if root and path.startswith(root) else path
    return suffix.rstrip("/") or "/"

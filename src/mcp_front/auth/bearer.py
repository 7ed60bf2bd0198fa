"""Access tokens presented to a service: verified locally, revocation checked through a cache.

The hot path makes no store round trip and no signature check for a token it has seen
recently: a token verified once for a resource is remembered (by its exact bytes) until
it expires, and the answer to "is this jti revoked?" is remembered for a few seconds,
which bounds how long a revoked token keeps working. Checking an ES256 signature costs
far more than the rest of a request's authentication, and clients send the same token
with every request.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mcp_front.auth.audience import AudienceValidator
from mcp_front.auth.principal import Principal
from mcp_front.auth.tokens import InvalidToken, TokenIssuer

logger = logging.getLogger("mcp_front.auth")

RevocationCheck = Callable[[str, str | None, str | None], Awaitable[bool]]
"""Whether an access token was revoked, given its `jti`, its `sid` and its `client_id`
(None without one): the token itself, the sign-in session (refresh family) it was issued
from, or the client it was issued to."""

_CACHE_SIZE = 10_000
_VERIFIED_CACHE_SIZE = 4_096


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    jti: str
    session: str | None
    expires_at: float
    keys: object
    """The key set that verified the token: a rotation that drops a key forgets its tokens."""


class AccessTokenVerifier:
    """Turns a bearer token into the `Principal` it stands for, for one resource."""

    def __init__(
        self,
        issuer: TokenIssuer | Callable[[], TokenIssuer],
        *,
        is_revoked: RevocationCheck | None = None,
        revocation_cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        # A callable lets the verifier exist before the signing keys are loaded at start-up.
        self._issuer = issuer if callable(issuer) and not isinstance(issuer, TokenIssuer) else lambda: issuer
        self._is_revoked = is_revoked
        self._cache_seconds = revocation_cache_seconds
        self._clock = clock
        self._revocations: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        self._wall_clock = wall_clock
        self._verified: OrderedDict[tuple[str, str], _Verified] = OrderedDict()

    def signed_here(self, token: str) -> bool:
        """Whether `token` looks like one of the gateway's access tokens (header only)."""
        return self._issuer().signed_here(token)

    async def verify(self, token: str, resource: str) -> Principal | None:
        """The principal, or None for a token that is invalid, revoked, or for another resource."""
        issuer = self._issuer()
        cached = self._verified.get((token, resource))
        if cached is not None and cached.keys is issuer.keys and self._wall_clock() < cached.expires_at:
            self._verified.move_to_end((token, resource))
            if await self._revoked(cached.jti, cached.session, cached.principal.client_id):
                logger.info("access token refused for %s: revoked", resource)
                return None
            return cached.principal
        return await self._verify(issuer, token, resource)

    async def _verify(self, issuer: TokenIssuer, token: str, resource: str) -> Principal | None:
        try:
            claims = issuer.verify_access_token(
                token, audience=lambda audience: AudienceValidator.covers(audience, resource)
            )
        except InvalidToken as exc:
            # The reason is for operators; clients only ever learn "invalid_token".
            logger.info("access token refused for %s: %s", resource, exc.reason)
            return None
        session = claims.extra.get("sid")
        session = session if isinstance(session, str) else None
        if await self._revoked(claims.jti, session, claims.client_id):
            logger.info("access token refused for %s: revoked", resource)
            return None
        groups = claims.extra.get("groups", ())
        principal = Principal(
            subject=claims.subject,
            email=claims.email,
            client_id=claims.client_id,
            scopes=frozenset(claims.scope),
            groups=frozenset(g for g in groups if isinstance(g, str))
            if isinstance(groups, list)
            else frozenset(),
        )
        self._verified[(token, resource)] = _Verified(
            principal, claims.jti, session, claims.expires_at, issuer.keys
        )
        if len(self._verified) > _VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    async def _revoked(self, jti: str, session: str | None, client_id: str | None) -> bool:
        if self._is_revoked is None:
            return False
        if self._cache_seconds <= 0:
            return await self._is_revoked(jti, session, client_id)
        now = self._clock()
        cached = self._revocations.get(jti)
        if cached is not None and cached[0] > now:
            return cached[1]
        revoked = await self._is_revoked(jti, session, client_id)
        self._revocations[jti] = (now + self._cache_seconds, revoked)
        self._revocations.move_to_end(jti)
        if len(self._revocations) > _CACHE_SIZE:
            self._revocations.popitem(last=False)
        return revoked

"""The provider's signing keys (JWKS), fetched once and fetched again only for an unknown key id.

Providers rotate keys by publishing the new one before signing with it, so a token whose
`kid` is not in the cached set means the cache is stale: one refresh per lookup settles it,
and a token still unmatched after that is rejected rather than refetched again.
"""

from __future__ import annotations

from typing import Any, Final

import anyio
import httpx2
import jwt

from mcp_front.idp import _http
from mcp_front.idp.base import IdentityProviderError

ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Signatures an ID token may carry: never `none`, never HMAC with the client secret."""


_KEY_TYPES: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class JWKSCache:
    """The signing keys at `jwks_uri`, loaded lazily and refreshed on an unknown `kid`."""

    def __init__(self, jwks_uri: str, http: httpx2.AsyncClient) -> None:
        self.jwks_uri = jwks_uri
        self._http = http
        self._keys: list[dict[str, Any]] | None = None
        self._lock = anyio.Lock()
        self.fetches = 0
        """How many times the set was downloaded; lets operators and tests see refreshes."""

    async def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key that signed a token with header `kid` and `alg`; refresh once if it is unknown."""
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise IdentityProviderError(
                "invalid_id_token", f"the ID token is signed with {alg!r}, which is not accepted"
            )
        if self._keys is None:
            await self._refresh(stale=None)
        found = self._match(kid, alg)
        if found is None:
            await self._refresh(stale=self._keys)
            found = self._match(kid, alg)
        if found is None:
            raise IdentityProviderError(
                "invalid_id_token",
                "the ID token is signed with a key the identity provider does not publish",
            )
        return found

    def _match(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        candidates = [
            entry
            for entry in self._keys or []
            if (kid is None or entry.get("kid") == kid)
            and entry.get("alg", alg) == alg
            and entry.get("use", "sig") == "sig"
            and entry.get("kty") == _KEY_TYPES.get(alg[:2])
        ]
        # Without a `kid` only an unambiguous key will do.
        if not candidates or (kid is None and len(candidates) > 1):
            return None
        try:
            return jwt.PyJWK(candidates[0], algorithm=alg)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            return None

    async def _refresh(self, *, stale: list[dict[str, Any]] | None) -> None:
        async with self._lock:
            if self._keys is not stale:
                return  # another task refreshed while this one waited
            response = await _http.send(self._http, "GET", self.jwks_uri, what="signing keys request")
            body = _http.json_object(response, what="signing keys (JWKS)")
            entries = body.get("keys")
            if not isinstance(entries, list):
                raise IdentityProviderError(
                    "provider_error", "the identity provider's JWKS has no `keys` list"
                )
            self.fetches += 1
            self._keys = [entry for entry in entries if isinstance(entry, dict)]

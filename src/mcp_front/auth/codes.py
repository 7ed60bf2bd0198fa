"""Authorization codes: single use, short-lived, stored by digest, replay detectable.

A code is an unguessable random string handed to the client in the redirect; the store
keeps only its SHA-256 digest as the key, so a copy of the store reveals no usable code.
`redeem` takes the entry atomically (`Store.take`), so of any number of concurrent attempts
exactly one gets the grant, and leaves a short-lived *spent marker* under the same digest.

The token endpoint binds the marker to what it issued (`bind`: the refresh-token family and
the access token's `jti`). A later attempt with the same code finds the marker (`replayed`)
and the endpoint revokes those tokens, as RFC 6749 §4.1.2 and OAuth 2.1 ask. A replay that
lands between `redeem` and `bind` flips the marker to "replayed", `bind` then fails, and the
endpoint revokes what it had just issued instead of returning it: no ordering of the two
requests lets both succeed or lets the tokens survive a detected replay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from mcp_front.crypto import digest, random_token
from mcp_front.storage import Store

__all__ = ["AuthorizationCode", "AuthorizationCodes", "SpentCode"]

CODES_NAMESPACE = "oauth.codes"
SPENT_NAMESPACE = "oauth.codes.spent"
_PENDING = b'{"state":"pending"}'
_REPLAYED = b'{"state":"replayed"}'


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """What `/authorize` decided, carried by a code to `/token`.

    `code_challenge` is the client's PKCE S256 challenge; `resource` the canonical resource
    (RFC 8707) the tokens will be for; `issued_at` seconds since the epoch.
    """

    client_id: str
    redirect_uri: str
    code_challenge: str
    resource: str
    scope: tuple[str, ...]
    subject: str
    email: str | None
    issued_at: float
    groups: tuple[str, ...] = ()
    nonce: str | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> AuthorizationCode:
        data: dict[str, Any] = json.loads(raw)
        data["scope"] = tuple(data["scope"])
        data["groups"] = tuple(data.get("groups", ()))
        return cls(**data)


@dataclass(frozen=True, slots=True)
class SpentCode:
    """A code seen again after it was redeemed, and what was issued from it (if anything yet)."""

    family_id: str | None = None
    access_token_jti: str | None = None
    access_token_expires_at: float | None = None


class AuthorizationCodes:
    """Issues and redeems authorization codes in a `Store`."""

    def __init__(
        self,
        store: Store,
        *,
        ttl: timedelta = timedelta(minutes=10),
        spent_ttl: timedelta | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self._store = store
        self.ttl = ttl
        # Long enough to catch a replay of any code that could still have been live, and
        # to cover an access token issued from it being revoked in time to matter.
        self.spent_ttl = spent_ttl if spent_ttl is not None else max(ttl, timedelta(hours=1))
        self._clock = clock

    async def issue(self, grant: AuthorizationCode) -> str:
        """A fresh code for `grant`; only its digest is stored, for `ttl`."""
        code = random_token(32)
        if not await self._store.add(CODES_NAMESPACE, _key(code), grant.to_bytes(), ttl=self.ttl):
            raise RuntimeError("authorization code collision")  # pragma: no cover - 256 random bits
        return code

    async def redeem(self, code: str) -> AuthorizationCode | None:
        """The grant of `code`, exactly once; None if unknown, already used, or expired."""
        key = _key(code)
        raw = await self._store.take(CODES_NAMESPACE, key)
        if raw is None:
            return None
        await self._store.put(SPENT_NAMESPACE, key, _PENDING, ttl=self.spent_ttl)
        grant = AuthorizationCode.from_bytes(raw)
        if self._clock() >= grant.issued_at + self.ttl.total_seconds():
            return None
        return grant

    async def bind(
        self, code: str, *, family_id: str | None, access_token_jti: str, access_token_expires_at: float
    ) -> bool:
        """Record what was issued from a redeemed `code`; False if it was replayed meanwhile."""
        record = {
            "state": "issued",
            "family_id": family_id,
            "jti": access_token_jti,
            "exp": access_token_expires_at,
        }
        value = json.dumps(record, separators=(",", ":")).encode()
        return await self._store.compare_and_set(
            SPENT_NAMESPACE, _key(code), _PENDING, value, ttl=self.spent_ttl
        )

    async def replayed(self, code: str) -> SpentCode | None:
        """For a code `redeem` refused: the spent marker if it was used before, else None.

        A marker still pending (tokens not issued yet) is flipped to "replayed" so the
        redemption in flight cannot `bind`.
        """
        key = _key(code)
        for _ in range(3):
            raw = await self._store.get(SPENT_NAMESPACE, key)
            if raw is None:
                return None
            if raw == _PENDING:
                if await self._store.compare_and_set(
                    SPENT_NAMESPACE, key, _PENDING, _REPLAYED, ttl=self.spent_ttl
                ):
                    return SpentCode()
                continue
            data: dict[str, Any] = json.loads(raw)
            if data.get("state") != "issued":
                return SpentCode()
            return SpentCode(
                family_id=data.get("family_id"),
                access_token_jti=data.get("jti"),
                access_token_expires_at=data.get("exp"),
            )
        return SpentCode()


def _key(code: str) -> str:
    return digest(code).hex()

"""Refresh tokens in families with rotation and reuse detection; revoked access-token ids.

A refresh token is an opaque random string; the store keeps only its SHA-256 digest. Every
token descends from one sign-in: the first is issued with the authorization code, and each
use of the *current* token rotates it (the successor becomes current, the used one becomes
*previous*). The family record is swapped with `Store.compare_and_set`, so of two concurrent
uses of one token exactly one rotates.

Reuse: presenting any token of the family other than the current one means two parties hold
the family's tokens (RFC 6819 §5.2.2.3, OAuth 2.1 §4.3.1), and the whole family is revoked,
with one exception. Within `grace` of a rotation the immediately previous token returns
**the same successor again**, without rotating: a client whose response was lost, or which
refreshed twice at once, ends up with the one current token whichever response it keeps.
Minting a second successor instead would fork the family, and the fork the client did not
keep would later look like reuse and log the user out. To return the same successor the
family record holds it sealed (AES-256-GCM) under a key derived from the previous token, which
is itself stored only as a digest: the store alone cannot open it, only a holder of the
previous token can, and that is exactly who may retry.

Lifetime: every rotation issues a token valid for `ttl` and extends the family to match
(a sliding lifetime), so a client that refreshes at least once per `ttl` stays signed in.

Access tokens are stateless JWTs. Each carries the `sid` of the family it was issued from
(`session_of`): when a family is revoked (at `/revoke`, by reuse detection, by a replayed
code), `RevokedAccessTokens` (auth.revocations) learns of its session, and its access tokens
stop working too, on every replica (RFC 7009 §2.1).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mcp_front.auth.revocations import RevokedAccessTokens
from mcp_front.crypto import digest, random_token
from mcp_front.errors import MCPFrontError
from mcp_front.storage import Store

__all__ = [
    "InvalidRefreshToken",
    "RefreshFamily",
    "RefreshGrant",
    "RefreshRefusal",
    "RefreshTokens",
    "SignedInClient",
    "session_of",
]

TOKENS_NAMESPACE = "oauth.refresh.tokens"
FAMILIES_NAMESPACE = "oauth.refresh.families"
BY_SUBJECT_NAMESPACE = "oauth.refresh.by_subject"
"""Each subject's live families, `<subject digest>/<family id>`: what a user's page lists."""
_SEAL_LABEL = b"mcp-front refresh grace successor"
_MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a refresh-token family lets its client obtain: fixed for the family's life."""

    subject: str
    client_id: str
    resource: str
    scope: tuple[str, ...]
    email: str | None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RefreshFamily:
    """A live family as `RefreshTokens.family` reports it."""

    family_id: str
    grant: RefreshGrant
    expires_at: float

    @property
    def session(self) -> str:
        """The `sid` of the access tokens issued from this family."""
        return session_of(self.family_id)


def session_of(family_id: str) -> str:
    """The session id access tokens of a family carry: derived from the family id, which it
    does not reveal (a family id is never shown to anyone)."""
    return digest(f"sid:{family_id}").hex()[:32]


@dataclass(frozen=True, slots=True)
class SignedInClient:
    """A client holding a refresh-token family for a user, as the user's page lists it.

    `last_used` is when it last obtained tokens (its sign-in or its latest refresh): access
    tokens are checked without the store, so their every use is not recorded.
    """

    family_id: str
    client_id: str
    resource: str
    signed_in_at: float
    last_used: float
    expires_at: float


class RefreshRefusal(enum.StrEnum):
    """Why a refresh token was refused (for logs; the client only sees `invalid_grant`)."""

    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"
    WRONG_CLIENT = "wrong_client"
    REUSED = "reused"
    CONFLICT = "conflict"


class InvalidRefreshToken(MCPFrontError):
    """A refresh token was refused; `reason` says why. Never carries the token."""

    def __init__(self, reason: RefreshRefusal) -> None:
        super().__init__(f"refresh token refused: {reason.value}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Family:
    grant: RefreshGrant
    current: str
    expires_at: float
    previous: str | None = None
    rotated_at: float | None = None
    successor: str | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> _Family:
        data: dict[str, Any] = json.loads(raw)
        grant = dict(data.pop("grant"))
        grant["scope"] = tuple(grant["scope"])
        grant["groups"] = tuple(grant.get("groups", ()))
        return cls(grant=RefreshGrant(**grant), **data)


class RefreshTokens:
    """Issues, rotates and revokes refresh-token families in a `Store`."""

    def __init__(
        self,
        store: Store,
        *,
        ttl: timedelta = timedelta(days=30),
        grace: timedelta = timedelta(seconds=10),
        clock: Callable[[], float] = time.time,
        revoked_access_tokens: RevokedAccessTokens | None = None,
    ) -> None:
        """`revoked_access_tokens`, when given, learns of every revoked family, so the access
        tokens issued from it are refused too."""
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        if grace < timedelta(0) or grace >= ttl:
            raise ValueError("grace must be at least zero and shorter than ttl")
        self._store = store
        self.ttl = ttl
        self.grace = grace
        self._clock = clock
        self._revoked_access_tokens = revoked_access_tokens

    async def issue_family(self, grant: RefreshGrant) -> tuple[str, RefreshFamily]:
        """Start a family for `grant`; its first refresh token, and the family."""
        family_id = random_token(16)
        token = random_token(32)
        key = _key(token)
        expires_at = self._clock() + self.ttl.total_seconds()
        family = _Family(grant=grant, current=key, expires_at=expires_at)
        await self._store.put(TOKENS_NAMESPACE, key, family_id.encode(), ttl=self.ttl)
        if not await self._store.add(FAMILIES_NAMESPACE, family_id, family.to_bytes(), ttl=self.ttl):
            raise RuntimeError("refresh family collision")  # pragma: no cover - 128 random bits
        now = self._clock()
        await self._index(family_id, grant, signed_in_at=now, last_used=now, expires_at=expires_at)
        return token, RefreshFamily(family_id, grant, expires_at)

    async def signed_in_clients(self, subject: str) -> list[SignedInClient]:
        """The clients holding live families for `subject`, most recently used first."""
        prefix = _subject_prefix(subject)
        found = []
        now = self._clock()
        for key, raw in await self._store.scan(BY_SUBJECT_NAMESPACE, prefix):
            data: dict[str, Any] = json.loads(raw)
            client = SignedInClient(family_id=key.removeprefix(prefix), **data)
            if client.expires_at > now:
                found.append(client)
        return sorted(found, key=lambda client: client.last_used, reverse=True)

    async def revoke_for_subject(self, subject: str, family_id: str) -> bool:
        """Revoke one of `subject`'s families, only if it is theirs; True if it was live."""
        if not await self._store.delete(BY_SUBJECT_NAMESPACE, _subject_prefix(subject) + family_id):
            return False
        return await self.revoke_family_by_id(family_id)

    async def revoke_subject(self, subject: str) -> int:
        """Revoke every family of `subject` (a user who left): how many were live."""
        revoked = 0
        while clients := await self.signed_in_clients(subject):
            for client in clients:
                revoked += await self.revoke_for_subject(subject, client.family_id)
        return revoked

    async def _signed_in_at(self, family_id: str, grant: RefreshGrant, default: float) -> float:
        raw = await self._store.get(BY_SUBJECT_NAMESPACE, _subject_prefix(grant.subject) + family_id)
        if raw is None:
            return default
        value = json.loads(raw).get("signed_in_at")
        return float(value) if isinstance(value, int | float) else default

    async def _index(
        self, family_id: str, grant: RefreshGrant, *, signed_in_at: float, last_used: float, expires_at: float
    ) -> None:
        entry = {
            "client_id": grant.client_id,
            "resource": grant.resource,
            "signed_in_at": signed_in_at,
            "last_used": last_used,
            "expires_at": expires_at,
        }
        key = _subject_prefix(grant.subject) + family_id
        await self._store.put(BY_SUBJECT_NAMESPACE, key, json.dumps(entry).encode(), ttl=self.ttl)

    async def family(self, token: str) -> RefreshFamily | None:
        """The live family `token` belongs to (current or an earlier token of it), or None."""
        family_id = await self._family_id(token)
        if family_id is None:
            return None
        raw = await self._store.get(FAMILIES_NAMESPACE, family_id)
        if raw is None:
            return None
        family = _Family.from_bytes(raw)
        if self._clock() >= family.expires_at:
            return None
        return RefreshFamily(family_id, family.grant, family.expires_at)

    async def rotate(self, token: str, client_id: str) -> tuple[str, RefreshFamily]:
        """Exchange `token` (presented by `client_id`) for its successor; the family.

        Raises `InvalidRefreshToken`. Reuse of a token other than the current one, except
        the previous one within `grace`, revokes the whole family first.
        """
        used = _key(token)
        family_id = await self._family_id(token)
        if family_id is None:
            raise InvalidRefreshToken(RefreshRefusal.UNKNOWN)
        for _ in range(_MAX_ATTEMPTS):
            raw = await self._store.get(FAMILIES_NAMESPACE, family_id)
            if raw is None:
                raise InvalidRefreshToken(RefreshRefusal.REVOKED)
            family = _Family.from_bytes(raw)
            now = self._clock()
            if now >= family.expires_at:
                await self._store.delete(FAMILIES_NAMESPACE, family_id)
                raise InvalidRefreshToken(RefreshRefusal.EXPIRED)
            if not hmac.compare_digest(family.grant.client_id.encode(), client_id.encode()):
                raise InvalidRefreshToken(RefreshRefusal.WRONG_CLIENT)
            if hmac.compare_digest(used, family.current):
                successor = random_token(32)
                successor_key = _key(successor)
                await self._store.put(TOKENS_NAMESPACE, successor_key, family_id.encode(), ttl=self.ttl)
                rotated = replace(
                    family,
                    current=successor_key,
                    previous=used,
                    rotated_at=now,
                    successor=_seal(token, successor, family_id),
                    expires_at=now + self.ttl.total_seconds(),
                )
                if await self._store.compare_and_set(
                    FAMILIES_NAMESPACE, family_id, raw, rotated.to_bytes(), ttl=self.ttl
                ):
                    signed_in_at = await self._signed_in_at(family_id, family.grant, now)
                    await self._index(
                        family_id,
                        family.grant,
                        signed_in_at=signed_in_at,
                        last_used=now,
                        expires_at=rotated.expires_at,
                    )
                    return successor, RefreshFamily(family_id, family.grant, rotated.expires_at)
                await self._store.delete(TOKENS_NAMESPACE, successor_key)
                continue  # rotated concurrently: re-read, this is now a retry of `previous`
            if self._in_grace(family, used, now):
                assert family.successor is not None
                opened = _open(token, family.successor, family_id)
                if opened is not None:
                    return opened, RefreshFamily(family_id, family.grant, family.expires_at)
            await self.revoke_family_by_id(family_id)
            raise InvalidRefreshToken(RefreshRefusal.REUSED)
        raise InvalidRefreshToken(RefreshRefusal.CONFLICT)

    async def revoke_family(self, token_or_family: str) -> bool:
        """Revoke the family of a refresh token, or the family with that id; True if one was live."""
        family_id = await self._family_id(token_or_family)
        return await self.revoke_family_by_id(family_id if family_id is not None else token_or_family)

    async def revoke_family_by_id(self, family_id: str) -> bool:
        """Revoke a family: every refresh token of it stops working at once, and the access
        tokens issued from it as soon as resources next check. True if it was live."""
        if not family_id or "\x00" in family_id:
            return False
        raw = await self._store.take(FAMILIES_NAMESPACE, family_id)
        live = raw is not None
        if raw is not None:
            subject = _Family.from_bytes(raw).grant.subject
            await self._store.delete(BY_SUBJECT_NAMESPACE, _subject_prefix(subject) + family_id)
        if self._revoked_access_tokens is not None:
            await self._revoked_access_tokens.revoke_session(session_of(family_id))
        return live

    def _in_grace(self, family: _Family, used: str, now: float) -> bool:
        return (
            self.grace > timedelta(0)
            and family.previous is not None
            and family.rotated_at is not None
            and family.successor is not None
            and hmac.compare_digest(used, family.previous)
            and now - family.rotated_at <= self.grace.total_seconds()
        )

    async def _family_id(self, token: str) -> str | None:
        if not token:
            return None
        raw = await self._store.get(TOKENS_NAMESPACE, _key(token))
        return None if raw is None else raw.decode()


def _subject_prefix(subject: str) -> str:
    return digest(f"subject:{subject}").hex() + "/"


def _key(token: str) -> str:
    return digest(token).hex()


def _seal_key(token: str) -> bytes:
    return hmac.new(token.encode(), _SEAL_LABEL, hashlib.sha256).digest()


def _seal(previous: str, successor: str, family_id: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_seal_key(previous)).encrypt(nonce, successor.encode(), family_id.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def _open(previous: str, sealed: str, family_id: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(sealed)
        return AESGCM(_seal_key(previous)).decrypt(raw[:12], raw[12:], family_id.encode()).decode()
    except (InvalidTag, ValueError):
        return None

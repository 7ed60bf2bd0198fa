"""Authorization transactions: what `/authorize` decided, kept server-side until the user is back.

A transaction lives in the `Store` (namespace ``oauth.transactions``) for ten minutes under the
digest of a random key: first the ``state`` sent to the identity provider, then, while the
consent page is open, a fresh consent id. Every step `take`s it, so it is used exactly once.

It is bound to the browser that started it: `/authorize` sets a login cookie holding a random
secret and the transaction keeps only the secret's digest. The callback and the consent form
accept the transaction only from a browser presenting that secret, so a victim cannot be made
to finish a sign-in an attacker started (login CSRF). The secret is per browser, not per
transaction, so a user connecting several services at once finishes every one of them.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from mcp_front.crypto import digest, random_token
from mcp_front.storage import Store

__all__ = [
    "TRANSACTIONS_NAMESPACE",
    "TRANSACTION_TTL",
    "AuthorizationTransaction",
    "LoginCookie",
    "Transactions",
]

TRANSACTIONS_NAMESPACE = "oauth.transactions"
TRANSACTION_TTL = timedelta(minutes=10)
_SECRET = re.compile(r"[A-Za-z0-9_-]{43,128}")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, slots=True)
class AuthorizationTransaction:
    """One sign-in in progress.

    `state` is the client's own state (echoed back to it); `idp_state`, `nonce` and
    `idp_code_verifier` are the gateway's values for the identity provider. `resource` is
    canonical. `browser_binding` and `consent_csrf` are hex SHA-256 digests, never secrets.
    The user fields are filled once the identity provider has vouched for them.
    """

    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    resource: str
    scope: tuple[str, ...]
    idp_state: str
    nonce: str
    idp_code_verifier: str
    browser_binding: str
    created_at: float
    subject: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()
    consent_csrf: str | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> AuthorizationTransaction:
        data: dict[str, Any] = json.loads(raw)
        data["scope"] = tuple(data["scope"])
        data["groups"] = tuple(data.get("groups", ()))
        return cls(**data)


class Transactions:
    """Saves and takes transactions in a `Store`, each at most `ttl` after it began."""

    def __init__(
        self, store: Store, *, ttl: timedelta = TRANSACTION_TTL, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self.ttl = ttl
        self.clock = clock

    async def save(self, key: str, transaction: AuthorizationTransaction) -> None:
        """Keep `transaction` under `key` (a random secret) for what is left of its lifetime."""
        left = transaction.created_at + self.ttl.total_seconds() - self.clock()
        if left <= 0:
            return
        await self._store.put(
            TRANSACTIONS_NAMESPACE, _key(key), transaction.to_bytes(), ttl=timedelta(seconds=left)
        )

    async def peek(self, key: str) -> AuthorizationTransaction | None:
        """The transaction under `key`, left in place; None if unknown, used or expired."""
        if not key or len(key) > 512:
            return None
        return self._unexpired(await self._store.get(TRANSACTIONS_NAMESPACE, _key(key)))

    async def take(self, key: str) -> AuthorizationTransaction | None:
        """The transaction under `key`, removed; None if unknown, used or expired."""
        if not key or len(key) > 512:
            return None
        return self._unexpired(await self._store.take(TRANSACTIONS_NAMESPACE, _key(key)))

    def _unexpired(self, raw: bytes | None) -> AuthorizationTransaction | None:
        if raw is None:
            return None
        transaction = AuthorizationTransaction.from_bytes(raw)
        if self.clock() >= transaction.created_at + self.ttl.total_seconds():
            return None
        return transaction


class LoginCookie:
    """The cookie that binds transactions to a browser.

    ``__Host-mcp_front_login`` (Secure, Path=/) when the issuer is https; plain
    ``mcp_front_login`` with Path=/ otherwise (a ``__Host-`` cookie must be Secure, which a
    browser refuses over http, even on loopback). Always HttpOnly and SameSite=Lax: the
    identity provider's redirect back is a top-level navigation, so Lax still sends it.
    """

    def __init__(self, issuer: str, *, max_age: timedelta = TRANSACTION_TTL) -> None:
        self.secure = urlsplit(issuer).scheme.lower() == "https"
        self.name = "__Host-mcp_front_login" if self.secure else "mcp_front_login"
        self.max_age = int(max_age.total_seconds())

    def secret(self, request: Request) -> str | None:
        """The browser's secret, if it sent a well-formed one."""
        value = request.cookies.get(self.name)
        return value if value is not None and _SECRET.fullmatch(value) else None

    def secret_or_new(self, request: Request) -> str:
        """The browser's secret, or a new one."""
        return self.secret(request) or random_token(32)

    def set(self, response: Response, secret: str) -> None:
        response.set_cookie(
            self.name,
            secret,
            max_age=self.max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def matches(self, request: Request, transaction: AuthorizationTransaction) -> bool:
        """Whether this browser started `transaction` (constant-time)."""
        secret = self.secret(request)
        presented = digest(secret).hex() if secret is not None else ""
        return hmac.compare_digest(presented.encode(), transaction.browser_binding.encode())


def binding_of(secret: str) -> str:
    """The digest a transaction keeps of a browser secret."""
    return digest(secret).hex()


def is_loopback_http(uri: str) -> bool:
    """Whether `uri` is an http URI on a loopback host (RFC 8252 §7.3)."""
    parts = urlsplit(uri)
    return parts.scheme.lower() == "http" and (parts.hostname or "").lower() in _LOOPBACK


def _key(key: str) -> str:
    return digest(key).hex()

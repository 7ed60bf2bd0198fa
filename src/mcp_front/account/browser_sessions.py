"""Browser sessions: who is signed in to the gateway's own pages, in this browser.

A session is a record in the `Store` (namespace ``account.sessions``, under the digest of
a random id) that expires with the session; the browser holds only the id, sealed by the
keyring, in a cookie: ``__Host-mcp_front_session`` (Secure, Path=/) on https, plain
``mcp_front_session`` on http loopback, always HttpOnly and SameSite=Lax. Signing out
deletes the record, so a copied cookie is worthless afterwards; a cookie that does not
open (tampered, or sealed under a key no longer held) signs the browser out.

Each session carries its own CSRF secret: every form of the pages posts it back, and a
POST without it is refused.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from mcp_front.auth.transactions import is_loopback_http
from mcp_front.crypto import DecryptionError, Keyring, digest, random_token
from mcp_front.idp.base import Identity
from mcp_front.storage import Store
from mcp_front.storage.records import JSONRecord

__all__ = ["SESSIONS_NAMESPACE", "SESSION_TTL", "BrowserSession", "BrowserSessions"]

SESSIONS_NAMESPACE = "account.sessions"
SESSION_TTL = timedelta(hours=8)
_COOKIE_CONTEXT = b"account.session-cookie"
_MAX_COOKIE = 512


@dataclass(frozen=True, slots=True)
class BrowserSession(JSONRecord):
    """A signed-in browser. `user` is the key the user's credentials are kept under, the
    same a `Principal` of that subject has."""

    id_digest: str
    subject: str
    email: str | None
    csrf: str
    created_at: float
    expires_at: float

    @property
    def user(self) -> str:
        return f"user:{self.subject}"

    @property
    def display_name(self) -> str:
        return self.email or self.subject

    def csrf_matches(self, presented: str | None) -> bool:
        """Whether a form carried this session's CSRF secret (constant-time)."""
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf.encode())


class BrowserSessions:
    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        *,
        issuer: str,
        ttl: timedelta = SESSION_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self.ttl = ttl
        self.clock = clock
        https = urlsplit(issuer).scheme.lower() == "https"
        self.cookie_name = "__Host-mcp_front_session" if https else "mcp_front_session"
        self.secure = https or not is_loopback_http(issuer)

    async def start(self, response: Response, identity: Identity) -> BrowserSession:
        """A new session for `identity`, its cookie set on `response`."""
        session_id = random_token(32)
        now = self.clock()
        session = BrowserSession(
            id_digest=digest(session_id).hex(),
            subject=identity.subject,
            email=identity.email,
            csrf=random_token(24),
            created_at=now,
            expires_at=now + self.ttl.total_seconds(),
        )
        await self._store.put(SESSIONS_NAMESPACE, session.id_digest, session.to_bytes(), ttl=self.ttl)
        sealed = self._keyring.encrypt(session_id.encode(), context=_COOKIE_CONTEXT).decode()
        response.set_cookie(
            self.cookie_name,
            sealed,
            max_age=int(self.ttl.total_seconds()),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )
        return session

    async def current(self, request: Request) -> BrowserSession | None:
        """The browser's live session, or None (no cookie, a cookie that does not open, or
        a session that ended)."""
        sealed = request.cookies.get(self.cookie_name)
        if not sealed or len(sealed) > _MAX_COOKIE:
            return None
        try:
            session_id = self._keyring.decrypt(sealed, context=_COOKIE_CONTEXT).decode()
        except (DecryptionError, UnicodeDecodeError):
            return None
        raw = await self._store.get(SESSIONS_NAMESPACE, digest(session_id).hex())
        if raw is None:
            return None
        session = BrowserSession.from_bytes(raw)
        return session if self.clock() < session.expires_at else None

    def has_cookie(self, request: Request) -> bool:
        return self.cookie_name in request.cookies

    async def end(self, request: Request, response: Response) -> None:
        """Sign the browser out: its session is deleted and its cookie cleared."""
        session = await self.current(request)
        if session is not None:
            await self._store.delete(SESSIONS_NAMESPACE, session.id_digest)
        self.clear(response)

    def clear(self, response: Response) -> None:
        response.delete_cookie(self.cookie_name, path="/", secure=self.secure, httponly=True, samesite="lax")

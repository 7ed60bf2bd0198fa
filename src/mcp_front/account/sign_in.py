"""Signing in to the gateway's own pages: `/my/signin`, finished at the identity provider's
callback (`/oauth/callback`, the one URL registered with the provider).

`/my/signin?next=…` keeps a sign-in record (namespace ``account.sign_ins``, ten minutes,
single use, under the digest of the state sent to the provider) bound to the browser by
the same login cookie as the authorization flow, so nobody can make a victim's browser
finish a sign-in they started (login CSRF). The callback hands every state it does not
know to `finish`; a user the sign-in policy admits gets a browser session and goes to
`next`, which must be one of the gateway's own pages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcp_front.account.browser_sessions import BrowserSessions
from mcp_front.auth.sign_in_policy import SignInPolicy
from mcp_front.auth.transactions import LoginCookie, binding_of
from mcp_front.crypto import digest, random_token
from mcp_front.idp.base import IdentityProvider, IdentityProviderError
from mcp_front.storage import Store
from mcp_front.storage.records import JSONRecord
from mcp_front.web.pages import error_page

__all__ = ["SIGN_INS_NAMESPACE", "PageSignIn"]

logger = logging.getLogger(__name__)

SIGN_INS_NAMESPACE = "account.sign_ins"
SIGN_IN_TTL = timedelta(minutes=10)
_NO_STORE = {"Cache-Control": "no-store"}
_MAX_NEXT = 512


@dataclass(frozen=True, slots=True)
class _PendingSignIn(JSONRecord):
    browser_binding: str
    nonce: str
    code_verifier: str
    next: str
    created_at: float


class PageSignIn:
    """The sign-in of a person to the gateway's pages, through the identity provider."""

    def __init__(
        self,
        *,
        store: Store,
        idp: IdentityProvider,
        policy: SignInPolicy,
        sessions: BrowserSessions,
        issuer: str,
        callback_url: str,
        pages_path: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`pages_path` is where the pages live as the browser sees them (the base URL's path
        and ``/my``): `next` must lie below it."""
        self._store = store
        self._idp = idp
        self._policy = policy
        self._sessions = sessions
        self._cookie = LoginCookie(issuer)
        self._callback_url = callback_url
        self.pages_path = pages_path
        self._clock = clock

    @property
    def idp_name(self) -> str:
        return self._idp.name

    def start_url(self, next_page: str) -> str:
        """Where to send a browser that must sign in before seeing `next_page`."""
        return f"{self.pages_path}/signin?{urlencode({'next': next_page})}"

    def required(self, request: Request) -> Response:
        """The answer to a page request without a live session: off to sign in, and back
        to the same page; a cookie that no longer opens a session is cleared."""
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(self.start_url(here), status_code=303, headers=_NO_STORE)
        if self._sessions.has_cookie(request):
            self._sessions.clear(response)
        return response

    async def start(self, request: Request) -> Response:
        """GET `/my/signin`: off to the identity provider."""
        next_page = self.safe_next(request.query_params.get("next"))
        secret = self._cookie.secret_or_new(request)
        state = random_token(32)
        pending = _PendingSignIn(
            browser_binding=binding_of(secret),
            nonce=random_token(32),
            code_verifier=random_token(48),
            next=next_page,
            created_at=self._clock(),
        )
        await self._store.put(SIGN_INS_NAMESPACE, digest(state).hex(), pending.to_bytes(), ttl=SIGN_IN_TTL)
        location = self._idp.authorization_url(
            redirect_uri=self._callback_url,
            state=state,
            nonce=pending.nonce,
            code_verifier=pending.code_verifier,
        )
        response = RedirectResponse(location, status_code=302, headers=_NO_STORE)
        self._cookie.set(response, secret)
        return response

    async def finish(self, request: Request, state: str) -> Response | None:
        """The provider's callback for a sign-in this flow started; None for any other state."""
        key = digest(state).hex()
        raw = await self._store.get(SIGN_INS_NAMESPACE, key)
        if raw is None:
            return None
        pending = _PendingSignIn.from_bytes(raw)
        if self._clock() >= pending.created_at + SIGN_IN_TTL.total_seconds():
            return None
        # Checked before it is used up: another browser cannot spend someone's sign-in.
        if binding_of(self._cookie.secret(request) or "") != pending.browser_binding:
            return error_page(
                "This sign-in was started in another browser",
                "For your safety, a sign-in must finish in the browser where it started. Sign in again.",
            )
        if not await self._store.compare_and_set(SIGN_INS_NAMESPACE, key, raw, None):
            return None
        params = request.query_params
        if params.get("error") or not params.get("code"):
            return error_page(
                "Signing in did not complete",
                f"Signing in at {self._idp.name} was cancelled or failed. Sign in again.",
                status_code=403,
            )
        try:
            identity = await self._idp.complete(
                code=params["code"],
                redirect_uri=self._callback_url,
                code_verifier=pending.code_verifier,
                nonce=pending.nonce,
            )
        except IdentityProviderError as failure:
            logger.warning("page sign-in at %s failed: %s", self._idp.name, failure.kind)
            return error_page("Signing in did not complete", failure.message, status_code=400)
        decision = self._policy.check_sign_in(identity)
        if not decision.allowed:
            return error_page("You may not sign in here", decision.reason, status_code=403)
        response = RedirectResponse(pending.next, status_code=303, headers=_NO_STORE)
        await self._sessions.start(response, identity)
        return response

    def safe_next(self, candidate: str | None) -> str:
        """`candidate` if it is one of the gateway's pages, the token page otherwise: a
        sign-in never ends anywhere else."""
        default = f"{self.pages_path}/tokens"
        if not candidate or len(candidate) > _MAX_NEXT or not candidate.startswith(self.pages_path + "/"):
            return default
        if (
            "//" in candidate
            or "\\" in candidate
            or any(c in candidate for c in "\r\n\t")
            or ".." in candidate
        ):
            return default
        return candidate

"""After an MCP client's sign-in: one page listing the services the user still has to
connect, before the browser goes back to the client (one sign-in at the identity
provider, not two).

The sign-in also opens a browser session for the gateway's pages, so connecting needs no
second sign-in. Not on a gateway served over http on loopback (development), where
cookies reach every port of the host, the client's redirect listener included: there
the page is shown only to a browser already signed in to the pages.

When every service of the client's resource (an aggregate's members included) has the
user's credential or the organisation's fallback, the browser goes straight back.
Otherwise the redirect that carries the client's code is kept server-side (namespace
``account.continuations``, ten minutes, single use, bound to the user and the browser
session) behind `/my/continue/<id>`: the page shows each service with a way to connect
it, and **Continue** goes back to the client, connected or not. The code never appears
in a URL of the gateway's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcp_front.account.browser_sessions import BrowserSession, BrowserSessions
from mcp_front.account.forms import checked_post
from mcp_front.account.sign_in import PageSignIn
from mcp_front.auth.audience import AudienceValidator
from mcp_front.auth.transactions import AuthorizationTransaction
from mcp_front.config import ServerConfig
from mcp_front.credentials import CredentialVault
from mcp_front.crypto import digest, random_token
from mcp_front.idp.base import Identity
from mcp_front.storage import Store
from mcp_front.storage.records import JSONRecord
from mcp_front.web.pages import error_page, form_action_source, host_label, render

__all__ = ["CONTINUATIONS_NAMESPACE", "ConnectBeforeReturning"]

CONTINUATIONS_NAMESPACE = "account.continuations"
CONTINUATION_TTL = timedelta(minutes=10)
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class _Continuation(JSONRecord):
    location: str
    user: str
    browser: str
    resource: str
    created_at: float


@dataclass(frozen=True, slots=True)
class PendingService:
    name: str
    display_name: str
    connected: bool


class ConnectBeforeReturning:
    """The `AfterSignIn` of the gateway's pages, and the `/my/continue/<id>` page."""

    def __init__(
        self,
        *,
        store: Store,
        vault: CredentialVault,
        sessions: BrowserSessions,
        sign_in: PageSignIn,
        audiences: AudienceValidator,
        servers: Mapping[str, ServerConfig],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._vault = vault
        self._sessions = sessions
        self._sign_in = sign_in
        self._audiences = audiences
        self._servers = servers
        self._clock = clock
        self.path = f"{sign_in.pages_path}/continue"
        self._tokens_path = f"{sign_in.pages_path}/tokens"

    async def before_returning(
        self, request: Request, transaction: AuthorizationTransaction, back_to_client: Response
    ) -> Response:
        assert transaction.subject is not None
        user = f"user:{transaction.subject}"
        session = await self._sessions.current(request)
        fresh = session is None or session.user != user
        # Over http on loopback, cookies reach every port of the host, the client's own
        # redirect listener included: a session is then never opened on the way back to it.
        opens_session = fresh and self._sessions.secure
        if fresh and not opens_session:
            return back_to_client
        pending = await self._pending(user, transaction.resource)
        if not any(not service.connected for service in pending):
            if opens_session:
                await self._sessions.start(back_to_client, _identity(transaction))
            return back_to_client
        response = Response(status_code=303, headers=_NO_STORE)
        if opens_session:
            session = await self._sessions.start(response, _identity(transaction))
        assert session is not None
        continuation_id = random_token(24)
        continuation = _Continuation(
            location=back_to_client.headers["location"],
            user=user,
            browser=session.id_digest,
            resource=transaction.resource,
            created_at=self._clock(),
        )
        await self._store.put(
            CONTINUATIONS_NAMESPACE, _key(continuation_id), continuation.to_bytes(), ttl=CONTINUATION_TTL
        )
        response.headers["location"] = f"{self.path}/{continuation_id}"
        return response

    async def show(self, request: Request) -> Response:
        """GET `/my/continue/<id>`: what is left to connect, and the way back."""
        session = await self._sessions.current(request)
        if session is None:
            return self._sign_in.required(request)
        continuation_id = request.path_params.get("continuation", "")
        continuation = await self._continuation(continuation_id, session, take=False)
        if continuation is None:
            return _expired()
        pending = await self._pending(session.user, continuation.resource)
        source = form_action_source(continuation.location)
        return render(
            "connect_first.html",
            form_targets=[source] if source else [],
            services=pending,
            user=session.display_name,
            csrf_token=session.csrf,
            tokens_page=self._tokens_path,
            then=continuation_id,
            action=f"{self.path}/{continuation_id}",
            client_host=host_label(continuation.location),
        )

    async def resume(self, request: Request) -> Response:
        """POST `/my/continue/<id>`: back to the client, connected or not."""
        checked = await checked_post(request, self._sessions)
        if isinstance(checked, Response):
            return checked
        session, _ = checked
        continuation_id = request.path_params.get("continuation", "")
        continuation = await self._continuation(continuation_id, session, take=True)
        if continuation is None:
            return _expired()
        return RedirectResponse(continuation.location, status_code=303, headers=_NO_STORE)

    def continue_url(self, continuation_id: str) -> str:
        return f"{self.path}/{continuation_id}"

    async def _continuation(
        self, continuation_id: str, session: BrowserSession, *, take: bool
    ) -> _Continuation | None:
        if not continuation_id or len(continuation_id) > 128:
            return None
        key = _key(continuation_id)
        raw = await self._store.get(CONTINUATIONS_NAMESPACE, key)
        if raw is None:
            return None
        continuation = _Continuation.from_bytes(raw)
        fresh = self._clock() < continuation.created_at + CONTINUATION_TTL.total_seconds()
        if not fresh or continuation.user != session.user or continuation.browser != session.id_digest:
            return None
        # Used up only by its owner, and only once.
        if take and not await self._store.compare_and_set(CONTINUATIONS_NAMESPACE, key, raw, None):
            return None
        return continuation

    async def _pending(self, user: str, resource: str) -> list[PendingService]:
        """The services behind `resource` that take users' own credentials, without a fallback."""
        service = self._audiences.service_for(resource)
        server = self._servers.get(service) if service is not None else None
        if service is None or server is None:
            return []
        names = server.servers if server.type == "aggregate" else [service]
        found = []
        for name in names:
            member = self._servers.get(name)
            settings = member.user_authentication if member is not None else None
            if member is None or not member.requires_user_token or settings is None:
                continue
            if settings.fallback_token is not None:
                continue
            credential = await self._vault.get(user, name)
            connected = credential is not None and credential.state != "expired"
            found.append(PendingService(name, settings.display_name, connected))
        return found


def _identity(transaction: AuthorizationTransaction) -> Identity:
    assert transaction.subject is not None
    return Identity(
        subject=transaction.subject, email=transaction.email, groups=frozenset(transaction.groups)
    )


def _key(continuation_id: str) -> str:
    return digest(continuation_id).hex()


def _expired() -> Response:
    return error_page(
        "This page has expired",
        "Connecting services after signing in must be done within ten minutes, in the browser "
        "where you signed in. Go back to your application and connect again.",
        status_code=400,
    )

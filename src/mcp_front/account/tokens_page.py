"""`/my/tokens`: the services that need the user's own credential, and what to do about each.

Every page needs a browser session (otherwise: off to sign in, and back). Every POST
carries the session's CSRF secret (403 without it) and answers with a redirect back to the
page and a message chosen from a fixed list, so nothing a request says is ever echoed.
A connect link made for another user (its `for` tag) stores nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcp_front.account.browser_sessions import BrowserSession, BrowserSessions
from mcp_front.account.forms import checked_post, forbidden, read_form
from mcp_front.account.sign_in import PageSignIn
from mcp_front.config import ManualUserAuthentication, ServerConfig
from mcp_front.credentials import Credential, CredentialVault
from mcp_front.credentials.links import user_tag_matches
from mcp_front.credentials.oauth_connections import OAuthConnections, ServiceUnreachable
from mcp_front.web.pages import error_page, form_action_source, render, shown_time

__all__ = ["MESSAGES", "TokensPage"]

Endpoint = Callable[[Request], Awaitable[Response]]

MAX_TOKEN_LENGTH = 8192
_NO_STORE = {"Cache-Control": "no-store"}
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
"""A continuation id as the page after sign-in makes them."""

MESSAGES: Mapping[str, tuple[str, str]] = {
    "saved": ("success", "Saved. Your applications use it from their next request."),
    "removed": ("success", "Disconnected. The gateway no longer holds a credential for it."),
    "empty": ("error", "Nothing was pasted: paste the token, then save."),
    "too-long": ("error", "That is longer than any token: paste only the token."),
    "invalid": (
        "error",
        "That does not look like the right token: check the instructions and paste it again.",
    ),
    "connected": ("success", "Connected. Your applications use it from their next request."),
    "connect-cancelled": ("error", "Connecting was cancelled at the service. Nothing was stored."),
    "connect-refused": ("error", "The service refused to connect. Nothing was stored; try again."),
    "connect-unreachable": (
        "error",
        "The service could not be reached. Nothing was stored; try again later.",
    ),
}
"""Every message the page can show, by the code in its `message` parameter."""


@dataclass(frozen=True, slots=True)
class ServiceRow:
    """One service on the page, as the template shows it."""

    name: str
    display_name: str
    kind: str
    instructions: str | None
    help_url: str | None
    state: str
    state_label: str
    problem: str | None
    updated: str | None
    selected: bool


_STATE_LABELS = {
    "missing": "Not connected",
    "connected": "Connected",
    "expired": "Expired: reconnect",
    "error": "Error: could not be checked",
}


class TokensPage:
    def __init__(
        self,
        *,
        servers: Mapping[str, ServerConfig],
        vault: CredentialVault,
        sessions: BrowserSessions,
        sign_in: PageSignIn,
        connections: OAuthConnections,
    ) -> None:
        self._services = {
            name: server.user_authentication
            for name, server in servers.items()
            if server.requires_user_token and server.user_authentication is not None
        }
        self._vault = vault
        self._sessions = sessions
        self._sign_in = sign_in
        self._connections = connections
        self.path = f"{sign_in.pages_path}/tokens"
        self.continue_path = f"{sign_in.pages_path}/continue"

    async def show(self, request: Request) -> Response:
        """GET `/my/tokens`."""
        session = await self._sessions.current(request)
        if session is None:
            return self._sign_in.required(request)
        params = request.query_params
        selected = params.get("service")
        link_for = params.get("for")
        if link_for is not None and not user_tag_matches(session.user, link_for):
            return self._other_user(session)
        then = _continuation_id(params.get("then"))
        credentials = await self._vault.of_user(session.user)
        rows = [self._row(name, credentials.get(name), selected) for name in self._services]
        message = MESSAGES.get(params.get("message", ""))
        # Browsers hold a form's redirect to its form-action too: Connect goes on to the service.
        providers = [form_action_source(url) for url in await self._connections.authorization_urls()]
        return render(
            "my_tokens.html",
            form_targets=[source for source in providers if source is not None],
            rows=rows,
            user=session.display_name,
            csrf_token=session.csrf,
            action_base=self.path,
            link_for=link_for,
            then=then,
            sign_out=f"{self._sign_in.pages_path}/signout",
            clients_page=f"{self._sign_in.pages_path}/clients",
            message=message,
            message_service=self._services[selected].display_name if selected in self._services else None,
        )

    async def save(self, request: Request) -> Response:
        """POST `/my/tokens/<service>`: keep a pasted token."""
        checked = await self._checked_post(request)
        if isinstance(checked, Response):
            return checked
        session, service, fields = checked
        settings = self._services[service]
        if not isinstance(settings, ManualUserAuthentication):
            return error_page("Not a pasted token", "This service is connected with its own sign-in.")
        then = _continuation_id(fields.get("then"))
        token = fields.get("token", "").strip()
        if not token:
            return self._back(service, "empty", then)
        if len(token) > MAX_TOKEN_LENGTH:
            return self._back(service, "too-long", then)
        if not token.isprintable() or any(c.isspace() for c in token):
            # A token goes into environments, headers and URLs: none of these takes them.
            return self._back(service, "invalid", then)
        if settings.validation is not None and not re.fullmatch(settings.validation, token):
            return self._back(service, "invalid", then)
        credential = Credential(service=service, kind="manual", access_token=token, updated_at=time.time())
        await self._vault.put(session.user, credential)
        return self._back(service, "saved", then)

    async def disconnect(self, request: Request) -> Response:
        """POST `/my/tokens/<service>/disconnect`: forget the credential, and revoke it at
        the service when it can be."""
        checked = await self._checked_post(request)
        if isinstance(checked, Response):
            return checked
        session, service, _ = checked
        removed = await self._vault.delete(session.user, service)
        if removed is not None and removed.kind == "oauth":
            await self._connections.revoke(removed)
        return self._back(service, "removed")

    async def connect(self, request: Request) -> Response:
        """POST `/my/tokens/<service>/connect`: off to the service's own sign-in."""
        checked = await self._checked_post(request)
        if isinstance(checked, Response):
            return checked
        session, service, fields = checked
        if service not in self._connections.services:
            return error_page("Not an OAuth service", "Paste a token for this service instead.")
        query = {"service": service, **({"for": fields["for"]} if fields.get("for") else {})}
        then = _continuation_id(fields.get("then"))
        next_page = f"{self.continue_path}/{then}" if then is not None else f"{self.path}?{urlencode(query)}"
        try:
            location = await self._connections.start(
                session.user, service, browser=session.id_digest, next_page=next_page
            )
        except ServiceUnreachable:
            return self._back(service, "connect-unreachable", then)
        return RedirectResponse(location, status_code=303, headers=_NO_STORE)

    async def connected(self, request: Request) -> Response:
        """GET `/oauth/callback/<service>`: the service sends the browser back."""
        service = request.path_params.get("service", "")
        session = await self._sessions.current(request)
        if service not in self._connections.services or session is None:
            return self._connect_expired()
        params = {
            key: request.query_params[key]
            for key in ("state", "code", "error")
            if key in request.query_params
        }
        result = await self._connections.finish(service, params, user=session.user, browser=session.id_digest)
        if result is None:
            return self._connect_expired()
        separator = "&" if "?" in result.next else "?"
        location = f"{result.next}{separator}{urlencode({'message': result.message})}#service-{service}"
        return RedirectResponse(location, status_code=303, headers=_NO_STORE)

    async def sign_out(self, request: Request) -> Response:
        """POST `/my/signout`."""
        session = await self._sessions.current(request)
        fields = await read_form(request)
        if isinstance(fields, Response):
            return fields
        if session is not None and not session.csrf_matches(fields.get("csrf_token")):
            return forbidden()
        response = render(
            "signed_out.html", sign_in=self._sign_in.start_url(self.path), idp=self._sign_in.idp_name
        )
        await self._sessions.end(request, response)
        return response

    # -- helpers ---------------------------------------------------------------------------

    async def _checked_post(self, request: Request) -> tuple[BrowserSession, str, dict[str, str]] | Response:
        service = request.path_params.get("service", "")
        if service not in self._services:
            return error_page(
                "Unknown service", "No service of this gateway is called that.", status_code=404
            )
        checked = await checked_post(request, self._sessions)
        if isinstance(checked, Response):
            return checked
        session, fields = checked
        link_for = fields.get("for") or None
        if link_for is not None and not user_tag_matches(session.user, link_for):
            return self._other_user(session)
        return session, service, fields

    def _row(self, name: str, credential: Credential | None, selected: str | None) -> ServiceRow:
        settings = self._services[name]
        state = credential.state if credential is not None else "missing"
        manual = isinstance(settings, ManualUserAuthentication)
        return ServiceRow(
            name=name,
            display_name=settings.display_name,
            kind="manual" if manual else "oauth",
            instructions=settings.instructions if isinstance(settings, ManualUserAuthentication) else None,
            help_url=settings.help_url if isinstance(settings, ManualUserAuthentication) else None,
            state=state,
            state_label=_STATE_LABELS[state],
            problem=credential.problem if credential is not None else None,
            updated=shown_time(credential.updated_at) if credential is not None else None,
            selected=name == selected,
        )

    def _back(self, service: str, message: str, then: str | None = None) -> Response:
        """Back to the page with `message`; to the page after sign-in when the user came from it."""
        if then is not None:
            query = urlencode({"message": message, "service": service})
            return RedirectResponse(
                f"{self.continue_path}/{then}?{query}", status_code=303, headers=_NO_STORE
            )
        query = urlencode({"service": service, "message": message})
        return RedirectResponse(f"{self.path}?{query}#service-{service}", status_code=303, headers=_NO_STORE)

    def _connect_expired(self) -> Response:
        return error_page(
            "This connection has expired",
            "Connecting must finish within ten minutes, in the browser and session where it "
            "started. Nothing was stored: start again from your connected services.",
            status_code=400,
        )

    def _other_user(self, session: BrowserSession) -> Response:
        return error_page(
            "This link was made for someone else",
            f"You are signed in as {session.display_name}, but the application that sent you here "
            "is signed in as another user. Nothing was stored. Sign out and sign in as that user, "
            "or open the link from your own application.",
            status_code=403,
        )


def _continuation_id(value: str | None) -> str | None:
    """`value` if it has the shape of a continuation id (the page after an application's
    sign-in), else None: nothing else is ever put into a redirect."""
    return value if value is not None and _TOKEN.fullmatch(value) else None

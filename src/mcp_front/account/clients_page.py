"""`/my/clients`: the MCP clients holding tokens for the signed-in user, and a button that
signs one out (its refresh-token family, and with it its access tokens).

A client's name is what it calls itself at registration; the page shows its client id and
the service beside it, since anyone may pick any name.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcp_front.account.browser_sessions import BrowserSessions
from mcp_front.account.forms import checked_post
from mcp_front.account.sign_in import PageSignIn
from mcp_front.auth.clients import RegisteredClients
from mcp_front.auth.refresh import RefreshTokens
from mcp_front.web.pages import render, shown_time

__all__ = ["ClientsPage"]

_NO_STORE = {"Cache-Control": "no-store"}
_MESSAGES = {
    "revoked": ("success", "Signed out. That application must sign in again to use the gateway."),
    "gone": ("error", "That application was already signed out."),
}


@dataclass(frozen=True, slots=True)
class ClientRow:
    family_id: str
    name: str
    client_id: str
    service: str
    signed_in: str
    last_used: str


class ClientsPage:
    def __init__(
        self,
        *,
        refresh_tokens: RefreshTokens,
        clients: RegisteredClients,
        sessions: BrowserSessions,
        sign_in: PageSignIn,
    ) -> None:
        self._refresh_tokens = refresh_tokens
        self._clients = clients
        self._sessions = sessions
        self._sign_in = sign_in
        self.path = f"{sign_in.pages_path}/clients"

    async def show(self, request: Request) -> Response:
        """GET `/my/clients`."""
        session = await self._sessions.current(request)
        if session is None:
            return self._sign_in.required(request)
        rows = []
        for held in await self._refresh_tokens.signed_in_clients(session.subject):
            client = await self._clients.get(held.client_id)
            rows.append(
                ClientRow(
                    family_id=held.family_id,
                    name=(client.client_name if client is not None else None) or "Unnamed application",
                    client_id=held.client_id,
                    service=held.resource,
                    signed_in=shown_time(held.signed_in_at),
                    last_used=shown_time(held.last_used),
                )
            )
        return render(
            "my_clients.html",
            rows=rows,
            user=session.display_name,
            csrf_token=session.csrf,
            action_base=self.path,
            tokens_page=f"{self._sign_in.pages_path}/tokens",
            sign_out=f"{self._sign_in.pages_path}/signout",
            message=_MESSAGES.get(request.query_params.get("message", "")),
        )

    async def revoke(self, request: Request) -> Response:
        """POST `/my/clients/<family>/revoke`: sign that client out."""
        checked = await checked_post(request, self._sessions)
        if isinstance(checked, Response):
            return checked
        session, _ = checked
        family_id = request.path_params.get("family", "")
        revoked = await self._refresh_tokens.revoke_for_subject(session.subject, family_id)
        query = urlencode({"message": "revoked" if revoked else "gone"})
        return RedirectResponse(f"{self.path}?{query}", status_code=303, headers=_NO_STORE)

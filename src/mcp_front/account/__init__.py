"""The gateway's own pages for a signed-in person: their connected services (`/my/tokens`),
the applications signed in as them (`/my/clients`), and signing in and out of them.
Built on the authorization server's identity provider, sign-in policy, store and keyring."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mcp_front.account.before_returning import ConnectBeforeReturning
from mcp_front.account.browser_sessions import BrowserSession, BrowserSessions
from mcp_front.account.clients_page import ClientsPage
from mcp_front.account.sign_in import PageSignIn
from mcp_front.account.tokens_page import TokensPage
from mcp_front.auth.rate_limits import rate_limited
from mcp_front.auth.server import AuthorizationServer
from mcp_front.config import ServerConfig
from mcp_front.credentials import CredentialVault
from mcp_front.credentials.mcp_oauth import CLIENT_METADATA_PATH, HostedServerAuthorization
from mcp_front.credentials.oauth_connections import OAuthConnections, callback_path
from mcp_front.rate_limit import RateLimit

__all__ = [
    "AccountPages",
    "BrowserSession",
    "BrowserSessions",
    "ClientsPage",
    "PageSignIn",
    "TokensPage",
]

PAGES = "/my"

Endpoint = Callable[[Request], Awaitable[Response]]


class AccountPages:
    """`/my/signin`, `/my/signout` and `/my/tokens`; the sign-in finishes at the
    authorization server's callback, which this registers itself with."""

    def __init__(
        self,
        server: AuthorizationServer,
        vault: CredentialVault,
        servers: Mapping[str, ServerConfig],
        *,
        base_url: str,
    ) -> None:
        self._server = server
        pages_path = urlsplit(base_url).path.rstrip("/") + PAGES
        self.sessions = BrowserSessions(server.store, server.keyring, issuer=server.issuer)
        self.sign_in = PageSignIn(
            store=server.store,
            idp=server.idp,
            policy=server.sign_in_policy,
            sessions=self.sessions,
            issuer=server.issuer,
            callback_url=server.config.callback_url,
            pages_path=pages_path,
        )
        server.sign_in_flows.append(self.sign_in)
        self.connections = OAuthConnections(vault, servers, store=server.store, base_url=base_url)
        self.hosted = HostedServerAuthorization(
            servers, store=server.store, keyring=server.keyring, base_url=base_url, http=self.connections.http
        )
        if self.hosted.display_names:
            self.connections.discover_with(self.hosted, self.hosted.display_names)
        self.tokens = TokensPage(
            servers=servers,
            vault=vault,
            sessions=self.sessions,
            sign_in=self.sign_in,
            connections=self.connections,
        )
        self.before_returning = ConnectBeforeReturning(
            store=server.store,
            vault=vault,
            sessions=self.sessions,
            sign_in=self.sign_in,
            audiences=server.audiences,
            servers=servers,
        )
        server.after_sign_in.append(self.before_returning)
        self.clients = ClientsPage(
            refresh_tokens=server.refresh_tokens,
            clients=server.clients,
            sessions=self.sessions,
            sign_in=self.sign_in,
        )

    def routes(self) -> list[BaseRoute]:
        """The pages' routes, relative to the gateway's base path."""
        return [
            # Each starts a record in the store: limited per address as /authorize is.
            Route(f"{PAGES}/signin", self._limited(self.sign_in.start, "signin"), methods=["GET"]),
            Route(f"{PAGES}/signout", self.tokens.sign_out, methods=["POST"]),
            Route(f"{PAGES}/tokens", self.tokens.show, methods=["GET"]),
            Route(f"{PAGES}/tokens/{{service}}", self.tokens.save, methods=["POST"]),
            Route(f"{PAGES}/tokens/{{service}}/disconnect", self.tokens.disconnect, methods=["POST"]),
            Route(
                f"{PAGES}/tokens/{{service}}/connect",
                self._limited(self.tokens.connect, "connect"),
                methods=["POST"],
            ),
            Route(callback_path("{service}"), self.tokens.connected, methods=["GET"]),
            Route(f"{PAGES}/clients", self.clients.show, methods=["GET"]),
            Route(CLIENT_METADATA_PATH, self._client_metadata, methods=["GET"]),
            Route(f"{PAGES}/continue/{{continuation}}", self.before_returning.show, methods=["GET"]),
            Route(f"{PAGES}/continue/{{continuation}}", self.before_returning.resume, methods=["POST"]),
            Route(f"{PAGES}/clients/{{family}}/revoke", self.clients.revoke, methods=["POST"]),
        ]

    def _limited(self, endpoint: Endpoint, name: str) -> Endpoint:
        rule = self._server.rate_limits.authorize
        limit = None if rule is None else RateLimit(rule.requests, rule.per)
        return rate_limited(endpoint, self._server.limiter, limit, name, page=True)

    async def _client_metadata(self, request: Request) -> Response:
        return JSONResponse(self.hosted.client_metadata(), headers={"Cache-Control": "public, max-age=3600"})

    async def aclose(self) -> None:
        await self.connections.aclose()

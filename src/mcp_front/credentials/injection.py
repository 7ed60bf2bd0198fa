"""`UserCredentials`: the caller's own credential for a service, as its backend receives it.

It is the gateway's `UserTokenSource`: the backends ask it for a principal's credential
whenever they render a `$userToken` value (a stdio child's environment at spawn, an HTTP
header per request). Only a signed-in user has credentials; the token comes out written
the way the service's `tokenFormat` says. An OAuth credential about to expire is renewed
first; one the provider refused for good (`expired`) is as good as none: the user must
reconnect. When the provider cannot be reached and the token no longer works,
`ServiceUnreachable` says so. A user without a credential of their own gets the
service's `fallbackToken`, the organisation's shared one, when it has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from mcp_front.auth.principal import Principal
from mcp_front.config import ServerConfig
from mcp_front.config.references import USER_TOKEN_PLACEHOLDER
from mcp_front.credentials.oauth_connections import OAuthConnections
from mcp_front.credentials.vault import CredentialVault

__all__ = ["CredentialOrigin", "UserCredentials"]


CredentialOrigin = Literal["own", "shared"]
"""Whose credential a call uses: the caller's own, or the organisation's shared fallback."""


class UserCredentials:
    def __init__(
        self,
        vault: CredentialVault,
        servers: Mapping[str, ServerConfig],
        connections: OAuthConnections | None = None,
    ) -> None:
        """`connections` renews OAuth credentials that are about to expire."""
        self._vault = vault
        self._connections = connections
        self._settings = {
            name: server.user_authentication
            for name, server in servers.items()
            if server.requires_user_token and server.user_authentication is not None
        }

    async def __call__(self, principal: Principal, service: str) -> str | None:
        token, _ = await self.resolve(principal, service)
        return token

    async def origin(self, principal: Principal, service: str) -> CredentialOrigin | None:
        """Whose credential a call by `principal` to `service` would use, if any."""
        _, origin = await self.resolve(principal, service)
        return origin

    async def resolve(self, principal: Principal, service: str) -> tuple[str | None, CredentialOrigin | None]:
        """The token as the backend receives it, and whose it is."""
        settings = self._settings.get(service)
        if settings is None:
            return None, None
        own = await self._own(principal, service) if principal.kind == "user" else None
        if own is not None:
            return settings.token_format.replace(USER_TOKEN_PLACEHOLDER, own), "own"
        if settings.fallback_token is not None:
            shared = settings.fallback_token.get_secret_value()
            return settings.token_format.replace(USER_TOKEN_PLACEHOLDER, shared), "shared"
        return None, None

    async def _own(self, principal: Principal, service: str) -> str | None:
        credential = await self._vault.get(principal.key, service)
        if credential is None or credential.state == "expired":
            return None
        if credential.kind == "oauth" and self._connections is not None:
            credential = await self._connections.usable(principal.key, service, credential)
            if credential.state == "expired":
                return None
        return credential.access_token

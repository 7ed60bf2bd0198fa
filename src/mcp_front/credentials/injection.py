"""`UserCredentials`: the caller's own credential for a service, as its backend receives it.

It is the gateway's `UserTokenSource`: the backends ask it for a principal's credential
whenever they render a `$userToken` value (a stdio child's environment at spawn, an HTTP
header per request). Only a signed-in user has credentials; the token comes out written
the way the service's `tokenFormat` says. An OAuth credential about to expire is renewed
first; one the provider refused for good (`expired`) is as good as none: the user must
reconnect. When the provider cannot be reached and the token no longer works,
`ServiceUnreachable` says so.
"""

from __future__ import annotations

from collections.abc import Mapping

from mcp_front.auth.principal import Principal
from mcp_front.config import ServerConfig
from mcp_front.config.references import USER_TOKEN_PLACEHOLDER
from mcp_front.credentials.oauth_connections import OAuthConnections
from mcp_front.credentials.vault import CredentialVault

__all__ = ["UserCredentials"]


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
        self._formats = {
            name: server.user_authentication.token_format
            for name, server in servers.items()
            if server.requires_user_token and server.user_authentication is not None
        }

    async def __call__(self, principal: Principal, service: str) -> str | None:
        token_format = self._formats.get(service)
        if token_format is None or principal.kind != "user":
            return None
        credential = await self._vault.get(principal.key, service)
        if credential is None or credential.state == "expired":
            return None
        if credential.kind == "oauth" and self._connections is not None:
            credential = await self._connections.usable(principal.key, service, credential)
            if credential.state == "expired":
                return None
        return token_format.replace(USER_TOKEN_PLACEHOLDER, credential.access_token)

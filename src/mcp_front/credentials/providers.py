"""`ProviderEndpoints`: where and as whom the gateway talks to a service's OAuth server.

For `userAuthentication.type: "oauth"` they are configured; for `"mcp-oauth"` they are
discovered from the hosted MCP server itself (`credentials.mcp_oauth`). Either way the
connect flow and the refresh rules (`credentials.oauth_connections`) are the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from mcp_front.config import OAuthUserAuthentication

__all__ = ["ClientAuthentication", "EndpointsSource", "ProviderEndpoints", "configured_endpoints"]

ClientAuthentication = Literal["client_secret_basic", "client_secret_post", "none"]


@dataclass(frozen=True, slots=True)
class ProviderEndpoints:
    display_name: str
    authorization_url: str
    token_url: str
    client_id: str
    client_secret: str | None = None
    client_authentication: ClientAuthentication = "client_secret_basic"
    scopes: tuple[str, ...] = ()
    revocation_url: str | None = None
    resource: str | None = None
    """The resource indicator (RFC 8707) of the tokens: a hosted MCP server's URL."""


EndpointsSource = Callable[[str], Awaitable[ProviderEndpoints]]
"""The endpoints of a service, by its name (may raise `ServiceUnreachable`)."""


def configured_endpoints(settings: OAuthUserAuthentication) -> ProviderEndpoints:
    return ProviderEndpoints(
        display_name=settings.display_name,
        authorization_url=settings.authorization_url,
        token_url=settings.token_url,
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value(),
        client_authentication=settings.client_authentication,
        scopes=tuple(settings.scopes),
        revocation_url=settings.revocation_url,
    )

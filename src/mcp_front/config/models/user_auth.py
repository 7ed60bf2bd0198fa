"""How users give the gateway their own token for a service (Notion, Linear, ...)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import AfterValidator, Field, SecretStr

from mcp_front.config.errors import config_value_error
from mcp_front.config.models._base import ConfigModel
from mcp_front.config.models.values import HttpUrlText, RegularExpression
from mcp_front.config.references import USER_TOKEN_PLACEHOLDER


def _check_token_format(value: str) -> str:
    if USER_TOKEN_PLACEHOLDER not in value:
        pattern = value.startswith("^") or value.endswith("$")
        raise config_value_error(
            "token_format",
            f"must contain {USER_TOKEN_PLACEHOLDER}: it is how the token is written where it is used",
            fix='this looks like a pattern the token must match: move it to "validation"'
            if pattern
            else 'for example "Bearer {{token}}"',
        )
    return value


TokenFormat = Annotated[str, AfterValidator(_check_token_format)]


class ManualUserAuthentication(ConfigModel):
    """Users paste a token they created themselves, on the gateway's token page."""

    type: Literal["manual"] = "manual"
    """`"manual"`: users paste a token they made themselves."""
    display_name: str = Field(min_length=1, examples=["Notion Integration Token"])
    """What the token is called on the gateway's token page."""
    instructions: str = Field(min_length=1, examples=["Create an internal integration and copy its secret."])
    """How users get one, shown on that page."""
    help_url: HttpUrlText | None = None
    """A link to where the token is made."""
    validation: RegularExpression | None = Field(default=None, examples=["^secret_[a-zA-Z0-9]{43}$"])
    """A pattern the pasted token must match, to catch pasting the wrong thing."""
    token_format: TokenFormat = USER_TOKEN_PLACEHOLDER
    """How the token is written where `$userToken` puts it; must contain `{{token}}`."""
    fallback_token: SecretStr | None = None
    """The organisation's shared credential, used for users who have none of their own;
    never shown to users, and marked `"credential": "shared"` in the audit log."""


class OAuthUserAuthentication(ConfigModel):
    """Users connect their account with the service's OAuth flow; tokens are refreshed."""

    type: Literal["oauth"] = "oauth"
    """`"oauth"`: users connect their account with the service's OAuth flow."""
    display_name: str = Field(min_length=1, examples=["Linear"])
    """The service's name on the gateway's token page."""
    client_id: str = Field(min_length=1)
    """The OAuth client registered with the service for the gateway, with the redirect URI
    `<baseURL>/oauth/callback/<service name>`."""
    client_secret: SecretStr = Field(min_length=1)
    """That client's secret."""
    authorization_url: HttpUrlText
    """The service's OAuth authorization endpoint."""
    token_url: HttpUrlText
    """The service's OAuth token endpoint."""
    scopes: list[str] = Field(min_length=1, examples=[["read", "write"]])
    """The scopes to ask for, at least one."""
    revocation_url: HttpUrlText | None = None
    """The service's token revocation endpoint (RFC 7009): disconnecting revokes there too."""
    client_authentication: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    """How the gateway authenticates to the token endpoint (RFC 6749 §2.3.1)."""
    token_format: TokenFormat = USER_TOKEN_PLACEHOLDER
    """How the token is written where `$userToken` puts it; must contain `{{token}}`."""
    fallback_token: SecretStr | None = None
    """As for `manual`: the organisation's shared credential for users without their own."""


class MCPOAuthUserAuthentication(ConfigModel):
    """The service is a hosted MCP server protected by its own OAuth authorization server
    (Linear's, Notion's, Sentry's): the gateway discovers that server from the MCP server's
    401, registers itself there, and users connect their account as with `oauth`."""

    type: Literal["mcp-oauth"] = "mcp-oauth"
    """`"mcp-oauth"`: a hosted MCP server with an OAuth authorization server of its own."""
    display_name: str = Field(min_length=1, examples=["Linear"])
    """The service's name on the gateway's token page."""
    client_id: str | None = Field(default=None, min_length=1)
    """A client registered with the service's authorization server by hand; without it the
    gateway uses a client metadata document about itself, or registers (RFC 7591)."""
    client_secret: SecretStr | None = None
    """The secret of the `clientId` client, if it has one."""
    scopes: list[str] | None = None
    """The scopes to ask for; without them, those the server names (its 401, then its
    protected-resource metadata)."""
    token_format: TokenFormat = USER_TOKEN_PLACEHOLDER
    """How the token is written where `$userToken` puts it; must contain `{{token}}`."""
    fallback_token: SecretStr | None = None
    """As for `manual`: the organisation's shared credential for users without their own."""


UserAuthentication: TypeAlias = Annotated[
    ManualUserAuthentication | OAuthUserAuthentication | MCPOAuthUserAuthentication,
    Field(discriminator="type"),
]
"""A server's `userAuthentication`, told apart by its `type`."""

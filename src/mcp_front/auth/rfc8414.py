"""RFC 8414: OAuth 2.0 Authorization Server Metadata (and its OpenID Connect twin).

The metadata is built as a plain mapping rather than through a URL-typed model, so every
URL is exactly the string the issuer was configured with: some clients compare them
byte for byte, and a normalising URL type would add trailing slashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = ["GRANT_TYPES", "TOKEN_ENDPOINT_AUTH_METHODS", "authorization_server_metadata", "metadata_paths"]

GRANT_TYPES = ("authorization_code", "refresh_token")
TOKEN_ENDPOINT_AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic")


def authorization_server_metadata(issuer: str, *, scopes_supported: Sequence[str] = ()) -> dict[str, Any]:
    """The metadata document of the gateway's authorization server at `issuer`."""
    base = issuer.rstrip("/")
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "registration_endpoint": f"{base}/register",
        "revocation_endpoint": f"{base}/revoke",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
        "scopes_supported": list(scopes_supported),
        "client_id_metadata_document_supported": True,
        "authorization_response_iss_parameter_supported": True,
    }


def metadata_paths(issuer: str) -> tuple[str, ...]:
    """Every path, relative to the issuer's host, where clients look for the metadata.

    RFC 8414 §3 inserts the well-known segment before the issuer's path; OpenID Connect
    Discovery appends it; clients use either, so both are served.
    """
    path = urlsplit(issuer).path.rstrip("/")
    oauth = "/.well-known/oauth-authorization-server"
    openid = "/.well-known/openid-configuration"
    if not path:
        return (oauth, openid)
    return (f"{oauth}{path}", f"{openid}{path}", f"{path}{openid}", f"{path}{oauth}")

"""Google sign-in: OpenID Connect, optionally held to one Google Workspace domain.

Google's `hd` authorization parameter only preselects the account chooser; anyone can
edit it out of the URL. The `hd` claim in the signed ID token is what proves the account
belongs to the Workspace domain, so with `hosted_domain` set that claim is checked too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx2

from mcp_front.idp.base import Identity, IdentityProviderError
from mcp_front.idp.oidc import DEFAULT_SCOPES, OIDCProvider, TokenAuthMethod

GOOGLE_DISCOVERY_URL: Final = "https://accounts.google.com/.well-known/openid-configuration"


class GoogleProvider(OIDCProvider):
    """Google accounts; with `hosted_domain`, only accounts of that Workspace domain."""

    name: str = "google"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        hosted_domain: str | None = None,
        discovery_url: str = GOOGLE_DISCOVERY_URL,
        issuer: str | None = None,
        authorization_endpoint: str | None = None,
        token_endpoint: str | None = None,
        userinfo_endpoint: str | None = None,
        jwks_uri: str | None = None,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        token_auth_method: TokenAuthMethod | None = None,
        http: httpx2.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            client_id,
            client_secret,
            discovery_url=discovery_url,
            issuer=issuer,
            authorization_endpoint=authorization_endpoint,
            token_endpoint=token_endpoint,
            userinfo_endpoint=userinfo_endpoint,
            jwks_uri=jwks_uri,
            scopes=scopes,
            groups_claim=None,
            token_auth_method=token_auth_method,
            authorization_params={"hd": hosted_domain} if hosted_domain else None,
            http=http,
        )
        self.hosted_domain = hosted_domain.lower() if hosted_domain else None

    def _needs_userinfo(self, claims: Mapping[str, Any]) -> bool:
        return "email" not in claims

    def identity_from_claims(self, claims: Mapping[str, Any]) -> Identity:
        """The OIDC identity plus `hosted_domain` from the `hd` claim, which must match when configured."""
        identity = super().identity_from_claims(claims)
        hd = claims.get("hd")
        domain = hd.lower() if isinstance(hd, str) and hd else None
        if self.hosted_domain is not None and domain != self.hosted_domain:
            raise IdentityProviderError(
                "hosted_domain_mismatch",
                f"this Google account is not part of the {self.hosted_domain} Google Workspace",
            )
        return Identity(
            subject=identity.subject,
            email=identity.email,
            email_verified=identity.email_verified,
            name=identity.name,
            hosted_domain=domain,
            claims=identity.claims,
        )

"""Microsoft Entra ID (Azure AD) sign-in: OpenID Connect on the tenant's v2.0 endpoints.

Entra ID differs from plain OIDC in three ways handled here. Its ID tokens seldom carry
`email_verified`: an `email` is taken as verified only when the token says so, or when the
`xms_edov` optional claim says the tenant owns the email's domain. Users without an `email`
claim are known by `preferred_username` (their UPN), which is never taken as verified.
And the multi-tenant endpoints (`common`, `organizations`) publish an issuer with a
`{tenantid}` placeholder, filled from the token's `tid` claim.

Group membership comes from the `groups` claim (object ids, or names when the app is
configured to emit them). A user in more than 200 groups gets an overage pointer to the
Graph API instead; such users have no groups here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

import httpx2

from mcp_front.idp.base import Identity
from mcp_front.idp.oidc import DEFAULT_SCOPES, OIDCEndpoints, OIDCProvider, TokenAuthMethod, is_true

AZURE_LOGIN_URL: Final = "https://login.microsoftonline.com"


def azure_discovery_url(tenant_id: str, login_url: str = AZURE_LOGIN_URL) -> str:
    """The v2.0 discovery document of `tenant_id` (a GUID, a domain, `organizations` or `common`)."""
    return f"{login_url.rstrip('/')}/{quote(tenant_id, safe='')}/v2.0/.well-known/openid-configuration"


class AzureProvider(OIDCProvider):
    """Users of one Entra ID tenant (or several, with `organizations`)."""

    name: str = "azure"

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
        discovery_url: str | None = None,
        issuer: str | None = None,
        authorization_endpoint: str | None = None,
        token_endpoint: str | None = None,
        userinfo_endpoint: str | None = None,
        jwks_uri: str | None = None,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        groups_claim: str = "groups",
        token_auth_method: TokenAuthMethod | None = None,
        http: httpx2.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            client_id,
            client_secret,
            discovery_url=discovery_url or azure_discovery_url(tenant_id),
            issuer=issuer,
            authorization_endpoint=authorization_endpoint,
            token_endpoint=token_endpoint,
            userinfo_endpoint=userinfo_endpoint,
            jwks_uri=jwks_uri,
            scopes=scopes,
            groups_claim=groups_claim,
            token_auth_method=token_auth_method,
            http=http,
        )
        self.tenant_id = tenant_id

    def _needs_userinfo(self, claims: Mapping[str, Any]) -> bool:
        # Entra's userinfo (on Microsoft Graph) adds nothing the ID token lacks.
        return not claims

    def expected_issuer(self, endpoints: OIDCEndpoints, unverified_claims: Mapping[str, Any]) -> str:
        """The tenant's issuer; for multi-tenant endpoints, filled in with the token's `tid`."""
        issuer = super().expected_issuer(endpoints, unverified_claims)
        tid = unverified_claims.get("tid")
        if "{tenantid}" in issuer and isinstance(tid, str) and tid:
            return issuer.replace("{tenantid}", tid)
        return issuer

    def identity_from_claims(self, claims: Mapping[str, Any]) -> Identity:
        """Email from `email` (verified per `email_verified` or `xms_edov`), else the unverified UPN."""
        identity = super().identity_from_claims(claims)
        email = identity.email
        verified = bool(email) and (is_true(claims.get("email_verified")) or is_true(claims.get("xms_edov")))
        if email is None:
            upn = claims.get("preferred_username")
            email = upn if isinstance(upn, str) and "@" in upn else None
        return Identity(
            subject=identity.subject,
            email=email,
            email_verified=verified,
            name=identity.name,
            groups=identity.groups,
            claims=identity.claims,
        )

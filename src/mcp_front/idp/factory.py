"""The identity provider a gateway configuration asks for."""

from __future__ import annotations

from typing import Any

import httpx2

from mcp_front.config import IdentityProviderConfig
from mcp_front.idp.azure import AzureProvider
from mcp_front.idp.base import IdentityProvider
from mcp_front.idp.github import DEFAULT_SCOPES as GITHUB_SCOPES
from mcp_front.idp.github import GitHubProvider
from mcp_front.idp.google import GOOGLE_DISCOVERY_URL, GoogleProvider
from mcp_front.idp.oidc import DEFAULT_SCOPES, OIDCProvider


def provider_from_config(
    config: IdentityProviderConfig, *, http: httpx2.AsyncClient | None = None
) -> IdentityProvider:
    """Build the provider of `config.provider`, with any endpoint the configuration overrides.

    The configuration's `redirectUri` is not the provider's business: the authorization
    server passes it to each call. `allowedOrgs` is a sign-in rule for the access policy.
    """
    secret = config.client_secret.get_secret_value()
    scopes = tuple(config.scopes) if config.scopes is not None else None
    endpoints: dict[str, Any] = {
        "authorization_endpoint": config.authorization_url,
        "token_endpoint": config.token_url,
        "userinfo_endpoint": config.user_info_url,
    }
    if config.provider == "github":
        github: dict[str, Any] = {"scopes": scopes or GITHUB_SCOPES, "http": http}
        if config.authorization_url:
            github["authorize_url"] = config.authorization_url
        if config.token_url:
            github["token_url"] = config.token_url
        if config.user_info_url:
            # The API root is what precedes `/user` in the configured user URL.
            github["api_url"] = config.user_info_url.rstrip("/").removesuffix("/user")
        return GitHubProvider(config.client_id, secret, **github)
    common: dict[str, Any] = {
        **endpoints,
        "issuer": config.issuer,
        "jwks_uri": config.jwks_url,
        "scopes": scopes or DEFAULT_SCOPES,
        "http": http,
    }
    if config.provider == "google":
        return GoogleProvider(
            config.client_id,
            secret,
            discovery_url=config.discovery_url or GOOGLE_DISCOVERY_URL,
            hosted_domain=config.hosted_domain,
            **common,
        )
    if config.provider == "azure":
        assert config.tenant_id is not None  # the configuration model requires it for Azure
        return AzureProvider(
            config.tenant_id,
            config.client_id,
            secret,
            discovery_url=config.discovery_url,
            groups_claim=config.groups_claim,
            **common,
        )
    return OIDCProvider(
        config.client_id,
        secret,
        discovery_url=config.discovery_url,
        groups_claim=config.groups_claim,
        **common,
    )

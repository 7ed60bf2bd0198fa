"""`provider_from_config()`: the configured provider, with its endpoint overrides."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_front.config import IdentityProviderConfig
from mcp_front.idp import AzureProvider, GitHubProvider, GoogleProvider, IdentityProvider, OIDCProvider
from mcp_front.idp.factory import provider_from_config
from mcp_front.idp.google import GOOGLE_DISCOVERY_URL


def config(provider: str, **extra: Any) -> IdentityProviderConfig:
    return IdentityProviderConfig.model_validate(
        {
            "provider": provider,
            "clientId": "client-1",
            "clientSecret": "secret-1",
            "redirectUri": "https://mcp.example.com/oauth/callback",
            **extra,
        }
    )


def test_google_defaults_to_googles_discovery() -> None:
    provider = provider_from_config(config("google"))
    assert isinstance(provider, GoogleProvider)
    assert isinstance(provider, IdentityProvider)
    assert provider.name == "google"
    assert provider.discovery_url == GOOGLE_DISCOVERY_URL
    assert provider.scopes == ("openid", "email", "profile")
    assert "secret-1" not in repr(provider)


def test_azure_uses_the_tenants_v2_discovery() -> None:
    provider = provider_from_config(config("azure", tenantId="contoso.onmicrosoft.com"))
    assert isinstance(provider, AzureProvider)
    assert provider.discovery_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
    )
    assert provider.groups_claim == "groups"


def test_github_takes_endpoint_overrides() -> None:
    provider = provider_from_config(
        config(
            "github",
            authorizationUrl="https://ghe.example.com/login/oauth/authorize",
            tokenUrl="https://ghe.example.com/login/oauth/access_token",
            userInfoUrl="https://ghe.example.com/api/v3/user",
            allowedOrgs=["acme"],
        )
    )
    assert isinstance(provider, GitHubProvider)
    assert provider.api_url == "https://ghe.example.com/api/v3"
    assert provider.authorize_url == "https://ghe.example.com/login/oauth/authorize"
    assert provider.token_url == "https://ghe.example.com/login/oauth/access_token"


@pytest.mark.parametrize(
    "extra",
    [
        {
            "discoveryUrl": "https://idp.example.com/.well-known/openid-configuration",
            "scopes": ["openid", "email"],
        },
        {
            "authorizationUrl": "https://idp.example.com/authorize",
            "tokenUrl": "https://idp.example.com/token",
            "userInfoUrl": "https://idp.example.com/userinfo",
        },
    ],
    ids=["discovery", "manual"],
)
def test_generic_oidc_with_discovery_or_manual_endpoints(extra: dict[str, Any]) -> None:
    provider = provider_from_config(config("oidc", **extra))
    assert type(provider) is OIDCProvider
    assert provider.name == "oidc"
    if "discoveryUrl" in extra:
        assert provider.scopes == ("openid", "email")
    else:
        url = provider.authorization_url(
            redirect_uri="https://gw/cb", state="s", nonce="n", code_verifier="v" * 43
        )
        assert url.startswith("https://idp.example.com/authorize?response_type=code&client_id=client-1")


def test_hosted_domain_and_groups_claim_reach_the_provider() -> None:
    google = provider_from_config(config("google", hostedDomain="Example.com"))
    assert isinstance(google, GoogleProvider)
    assert google.hosted_domain == "example.com"
    oidc = provider_from_config(
        config("oidc", discoveryUrl="https://idp.example/.well-known/openid-configuration", groupsClaim="r")
    )
    assert isinstance(oidc, OIDCProvider)
    assert oidc.groups_claim == "r"

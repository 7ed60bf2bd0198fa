"""Upstream sign-in: the `IdentityProvider` protocol and adapters for OIDC, Google, Entra ID and GitHub.

`provider_from_config()` lives in `mcp_front.idp.factory`, so that importing the adapters
does not import the configuration models.
"""

from mcp_front.idp.azure import AzureProvider
from mcp_front.idp.base import Identity, IdentityProvider, IdentityProviderError
from mcp_front.idp.github import GitHubProvider
from mcp_front.idp.google import GoogleProvider
from mcp_front.idp.oidc import OIDCEndpoints, OIDCProvider

__all__ = [
    "AzureProvider",
    "GitHubProvider",
    "GoogleProvider",
    "Identity",
    "IdentityProvider",
    "IdentityProviderError",
    "OIDCEndpoints",
    "OIDCProvider",
]

"""`GoogleProvider` and `AzureProvider` against a real OpenID Provider standing in for Google and Entra ID."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from mcp_front.idp import AzureProvider, GoogleProvider, IdentityProviderError, OIDCProvider
from mcp_front.idp.pkce import new_token
from tests.support.oidc import REDIRECT_URI, TEST_USER, OIDCServer, browser_login

pytestmark = pytest.mark.e2e


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=10.0) as client:
        yield client


async def sign_in(provider: OIDCProvider) -> tuple[str, dict[str, str]]:
    """Run the flow; the authorization URL's query and the code exchange's arguments."""
    await provider.discover()
    nonce, verifier = new_token(), new_token()
    url = provider.authorization_url(
        redirect_uri=REDIRECT_URI, state="s", nonce=nonce, code_verifier=verifier
    )
    callback = await browser_login(url)
    return url, {"code": callback["code"], "code_verifier": verifier, "nonce": nonce}


async def test_google_asks_for_and_reports_the_hosted_domain(
    oidc_server: OIDCServer, http: httpx2.AsyncClient
) -> None:
    client_id, secret = oidc_server.basic_client
    provider = GoogleProvider(
        client_id, secret, hosted_domain="Example.com", discovery_url=oidc_server.discovery_url, http=http
    )
    url, args = await sign_in(provider)
    assert parse_qs(urlsplit(url).query)["hd"] == ["Example.com"]

    identity = await provider.complete(redirect_uri=REDIRECT_URI, **args)

    assert identity.hosted_domain == "example.com"
    assert (identity.subject, identity.email, identity.email_verified) == (
        TEST_USER["sub"],
        "ada@example.com",
        True,
    )
    assert identity.groups == frozenset()


async def test_google_rejects_an_account_of_another_workspace(
    oidc_server: OIDCServer, http: httpx2.AsyncClient
) -> None:
    client_id, secret = oidc_server.basic_client
    provider = GoogleProvider(
        client_id, secret, hosted_domain="other.example", discovery_url=oidc_server.discovery_url, http=http
    )
    _, args = await sign_in(provider)
    with pytest.raises(IdentityProviderError) as caught:
        await provider.complete(redirect_uri=REDIRECT_URI, **args)
    assert caught.value.kind == "hosted_domain_mismatch"
    assert "other.example" in caught.value.message


async def test_azure_reads_email_and_groups(oidc_server: OIDCServer, http: httpx2.AsyncClient) -> None:
    client_id, secret = oidc_server.post_client
    provider = AzureProvider(
        "contoso.onmicrosoft.com",
        client_id,
        secret,
        discovery_url=oidc_server.discovery_url,
        scopes=("openid", "email", "profile", "groups"),
        token_auth_method="client_secret_post",
        http=http,
    )
    _, args = await sign_in(provider)

    identity = await provider.complete(redirect_uri=REDIRECT_URI, **args)

    assert (identity.subject, identity.email, identity.email_verified) == (
        TEST_USER["sub"],
        "ada@example.com",
        True,
    )
    assert identity.groups == frozenset({"engineering", "admins"})
    assert identity.hosted_domain is None

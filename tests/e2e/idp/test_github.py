"""`GitHubProvider` against a local GitHub look-alike: profile, emails, paginated orgs and teams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from mcp_front.idp import GitHubProvider, IdentityProviderError
from mcp_front.idp.pkce import new_token
from tests.e2e.idp.fake_github import CLIENT_ID, CLIENT_SECRET, FakeGitHub, running_fake_github

pytestmark = pytest.mark.e2e

REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=10.0) as client:
        yield client


def provider_for(fake: FakeGitHub, http: httpx2.AsyncClient, secret: str = CLIENT_SECRET) -> GitHubProvider:
    return GitHubProvider(
        CLIENT_ID,
        secret,
        api_url=f"{fake.url}/api",
        authorize_url=f"{fake.url}/login/oauth/authorize",
        token_url=f"{fake.url}/login/oauth/access_token",
        http=http,
    )


async def login(provider: GitHubProvider, http: httpx2.AsyncClient) -> tuple[str, str]:
    state, verifier = new_token(), new_token()
    url = provider.authorization_url(
        redirect_uri=REDIRECT_URI, state=state, nonce="unused", code_verifier=verifier
    )
    response = await http.get(url)
    assert response.status_code == 302, response.text
    query = {key: values[0] for key, values in parse_qs(urlsplit(response.headers["location"]).query).items()}
    assert query["state"] == state
    return query["code"], verifier


async def test_user_emails_orgs_and_teams_across_three_pages(http: httpx2.AsyncClient) -> None:
    async with running_fake_github(FakeGitHub(page_size=2)) as fake:
        provider = provider_for(fake, http)
        code, verifier = await login(provider, http)
        identity = await provider.complete(
            code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce=""
        )

    assert identity.subject == "583231"
    assert identity.name == "The Octocat"
    assert (identity.email, identity.email_verified) == ("octocat@acme.example", True)
    assert identity.orgs == {
        "acme",
        "acme-labs",
        "widgets",
        "open-source",
        "partners",
        "acme/platform",
        "acme/security",
        "widgets/core",
        "partners/liaisons",
        "acme/sre",
    }
    assert identity.claims["login"] == "octocat"
    org_pages = [url for url in fake.api_requests if "/user/orgs" in url]
    team_pages = [url for url in fake.api_requests if "/user/teams" in url]
    assert len(org_pages) == 3
    assert len(team_pages) == 3
    assert all("per_page=100" in url for url in org_pages)


async def test_unverified_primary_email_is_reported_unverified(http: httpx2.AsyncClient) -> None:
    async with running_fake_github(FakeGitHub(email_verified=False)) as fake:
        provider = provider_for(fake, http)
        code, verifier = await login(provider, http)
        identity = await provider.complete(
            code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce=""
        )
    assert (identity.email, identity.email_verified) == ("octocat@acme.example", False)


async def test_wrong_secret_and_wrong_verifier_fail_the_exchange(http: httpx2.AsyncClient) -> None:
    async with running_fake_github(FakeGitHub()) as fake:
        code, verifier = await login(provider_for(fake, http), http)
        with pytest.raises(IdentityProviderError) as wrong_secret:
            await provider_for(fake, http, secret="nope").complete(
                code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce=""
            )
        code, _ = await login(provider_for(fake, http), http)
        with pytest.raises(IdentityProviderError) as wrong_verifier:
            await provider_for(fake, http).complete(
                code=code, redirect_uri=REDIRECT_URI, code_verifier=new_token(), nonce=""
            )
    assert wrong_secret.value.kind == "exchange_failed"
    assert "incorrect_client_credentials" in wrong_secret.value.message
    assert "nope" not in str(wrong_secret.value)
    assert wrong_verifier.value.kind == "exchange_failed"
    assert "bad_verification_code" in wrong_verifier.value.message


@pytest.mark.parametrize(
    ("fake", "words"),
    [
        (FakeGitHub(endless_orgs=True), "longer than"),
        (FakeGitHub(foreign_next_link=True), "outside its API"),
    ],
    ids=["endless", "foreign-origin"],
)
async def test_pagination_is_bounded_and_stays_on_the_api(
    http: httpx2.AsyncClient, fake: FakeGitHub, words: str
) -> None:
    async with running_fake_github(fake):
        provider = provider_for(fake, http)
        code, verifier = await login(provider, http)
        with pytest.raises(IdentityProviderError) as caught:
            await provider.complete(code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce="")
    assert caught.value.kind == "provider_error"
    assert words in caught.value.message
    assert not any("elsewhere.invalid" in url for url in fake.api_requests)

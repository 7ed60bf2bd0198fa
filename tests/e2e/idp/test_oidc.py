"""`OIDCProvider` against a real OpenID Provider process: the whole code flow and its failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from mcp_front.idp import IdentityProviderError, OIDCProvider
from mcp_front.idp.pkce import new_token, s256_challenge
from tests.support.oidc import REDIRECT_URI, TEST_USER, OIDCServer, browser_login, oidc_provider_process

pytestmark = pytest.mark.e2e

SCOPES = ("openid", "email", "profile", "groups")


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=10.0) as client:
        yield client


def provider_for(
    server: OIDCServer, http: httpx2.AsyncClient, *, post: bool = False, **kwargs: Any
) -> OIDCProvider:
    client_id, secret = server.post_client if post else server.basic_client
    return OIDCProvider(
        client_id, secret, discovery_url=server.discovery_url, scopes=SCOPES, http=http, **kwargs
    )


async def login(provider: OIDCProvider) -> tuple[str, str, str]:
    """Sign the test user in; the code with the verifier and nonce that belong to it."""
    await provider.discover()
    state, nonce, verifier = new_token(), new_token(), new_token()
    url = provider.authorization_url(
        redirect_uri=REDIRECT_URI, state=state, nonce=nonce, code_verifier=verifier
    )
    callback = await browser_login(url)
    assert callback["state"] == state
    return callback["code"], verifier, nonce


@pytest.mark.parametrize("post", [False, True], ids=["client_secret_basic", "client_secret_post"])
async def test_full_flow_returns_the_users_identity(
    oidc_server: OIDCServer, http: httpx2.AsyncClient, post: bool
) -> None:
    provider = provider_for(
        oidc_server, http, post=post, token_auth_method="client_secret_post" if post else None
    )
    code, verifier, nonce = await login(provider)

    identity = await provider.complete(
        code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce=nonce
    )

    assert identity.subject == TEST_USER["sub"]
    assert identity.email == "ada@example.com"
    assert identity.email_verified is True
    assert identity.name == "Ada Lovelace"
    assert identity.groups == frozenset({"engineering", "admins"})
    assert identity.orgs == frozenset()
    assert identity.claims["iss"] == oidc_server.issuer


async def test_authorization_url_carries_pkce_state_and_nonce(
    oidc_server: OIDCServer, http: httpx2.AsyncClient
) -> None:
    provider = provider_for(oidc_server, http)
    await provider.discover()
    url = provider.authorization_url(
        redirect_uri=REDIRECT_URI, state="s-1", nonce="n-1", code_verifier="v" * 43
    )
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{oidc_server.issuer}/auth?")
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == s256_challenge("v" * 43)
    assert (query["state"], query["nonce"], query["scope"]) == ("s-1", "n-1", " ".join(SCOPES))


async def test_nonce_mismatch_is_an_invalid_id_token(
    oidc_server: OIDCServer, http: httpx2.AsyncClient
) -> None:
    provider = provider_for(oidc_server, http)
    code, verifier, _ = await login(provider)
    with pytest.raises(IdentityProviderError) as caught:
        await provider.complete(code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce="another")
    assert caught.value.kind == "invalid_id_token"
    assert "nonce" in caught.value.message


async def test_wrong_client_secret_fails_the_exchange_without_echoing_it(
    oidc_server: OIDCServer, http: httpx2.AsyncClient
) -> None:
    good = provider_for(oidc_server, http)
    code, verifier, nonce = await login(good)
    client_id, _ = oidc_server.basic_client
    bad = OIDCProvider(client_id, "not-the-secret", discovery_url=oidc_server.discovery_url, http=http)
    with pytest.raises(IdentityProviderError) as caught:
        await bad.complete(code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce=nonce)
    assert caught.value.kind == "exchange_failed"
    assert "invalid_client" in caught.value.message
    assert "not-the-secret" not in str(caught.value)
    assert code not in str(caught.value)


async def test_wrong_code_verifier_and_replayed_code_fail_the_exchange(
    oidc_server: OIDCServer, http: httpx2.AsyncClient
) -> None:
    provider = provider_for(oidc_server, http)
    code, verifier, nonce = await login(provider)
    with pytest.raises(IdentityProviderError) as wrong_verifier:
        await provider.complete(code=code, redirect_uri=REDIRECT_URI, code_verifier=new_token(), nonce=nonce)
    assert wrong_verifier.value.kind == "exchange_failed"

    code, verifier, nonce = await login(provider)
    await provider.complete(code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce=nonce)
    with pytest.raises(IdentityProviderError) as replayed:
        await provider.complete(code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce=nonce)
    assert replayed.value.kind == "exchange_failed"
    assert "invalid_grant" in replayed.value.message


async def test_wrong_redirect_uri_fails_the_exchange(
    oidc_server: OIDCServer, http: httpx2.AsyncClient
) -> None:
    provider = provider_for(oidc_server, http)
    code, verifier, nonce = await login(provider)
    with pytest.raises(IdentityProviderError) as caught:
        await provider.complete(
            code=code, redirect_uri="http://127.0.0.1:9/elsewhere", code_verifier=verifier, nonce=nonce
        )
    assert caught.value.kind == "exchange_failed"


def _stale_jwks_transport(jwks_uri_suffix: str, *, times: int) -> tuple[httpx2.AsyncBaseTransport, list[str]]:
    """A real transport that answers the first `times` JWKS requests with an unrelated key set."""
    real = httpx2.AsyncHTTPTransport()
    other_key = json.loads(RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key()))
    stale = {"keys": [other_key | {"kid": "retired-key", "alg": "RS256", "use": "sig"}]}
    seen: list[str] = []

    class Transport(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            if request.url.path.endswith(jwks_uri_suffix):
                seen.append(str(request.url))
                if len(seen) <= times:
                    return httpx2.Response(200, json=stale)
            return await real.handle_async_request(request)

    return Transport(), seen


@pytest.mark.parametrize("stale_answers", [1, 2], ids=["key-rotated", "key-never-published"])
async def test_unknown_kid_refreshes_the_jwks_once(oidc_server: OIDCServer, stale_answers: int) -> None:
    transport, jwks_requests = _stale_jwks_transport("/jwks", times=stale_answers)
    async with httpx2.AsyncClient(transport=transport, timeout=10.0) as http:
        provider = provider_for(oidc_server, http)
        code, verifier, nonce = await login(provider)
        if stale_answers == 1:
            identity = await provider.complete(
                code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce=nonce
            )
            assert identity.subject == TEST_USER["sub"]
            code, verifier, nonce = await login(provider)
            await provider.complete(code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce=nonce)
        else:
            with pytest.raises(IdentityProviderError) as caught:
                await provider.complete(
                    code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce=nonce
                )
            assert caught.value.kind == "invalid_id_token"
        assert len(jwks_requests) == 2
        assert provider.jwks is not None
        assert provider.jwks.fetches == 2


async def test_manual_endpoints_without_jwks_read_the_user_from_userinfo(
    oidc_server: OIDCServer, http: httpx2.AsyncClient
) -> None:
    client_id, secret = oidc_server.basic_client
    provider = OIDCProvider(
        client_id,
        secret,
        authorization_endpoint=f"{oidc_server.issuer}/auth",
        token_endpoint=f"{oidc_server.issuer}/token",
        userinfo_endpoint=f"{oidc_server.issuer}/me",
        scopes=SCOPES,
        http=http,
    )
    code, verifier, nonce = await login(provider)
    identity = await provider.complete(
        code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier, nonce=nonce
    )
    assert (identity.subject, identity.email, identity.email_verified) == (
        TEST_USER["sub"],
        "ada@example.com",
        True,
    )
    assert identity.groups == frozenset({"engineering", "admins"})


async def test_a_refusing_user_comes_back_with_an_error_for_the_caller(http: httpx2.AsyncClient) -> None:
    with oidc_provider_process(deny=True) as server:
        provider = provider_for(server, http)
        await provider.discover()
        url = provider.authorization_url(
            redirect_uri=REDIRECT_URI, state="s", nonce="n", code_verifier=new_token()
        )
        callback = await browser_login(url)
    assert callback["error"] == "access_denied"
    assert "code" not in callback


async def test_unreachable_provider_is_a_network_error() -> None:
    async with httpx2.AsyncClient(timeout=2.0) as http:
        provider = OIDCProvider(
            "c", "s", discovery_url="http://127.0.0.1:9/.well-known/openid-configuration", http=http
        )
        with pytest.raises(IdentityProviderError) as caught:
            await provider.discover()
    assert caught.value.kind == "network"

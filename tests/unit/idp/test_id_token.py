"""ID-token checks of `OIDCProvider`, with tokens signed here and an in-process provider.

The happy path runs against a real OpenID Provider in `tests/e2e/idp`; these tests forge
the tokens a real provider would never send, to see each one refused with a clear reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from mcp_front.idp import AzureProvider, IdentityProviderError, OIDCProvider

ISSUER = "https://idp.test"
CLIENT_ID = "gateway"
NONCE = "nonce-1"
RSA_KEY = rsa.generate_private_key(65537, 2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if alg.startswith(("RS", "PS")) else ECAlgorithm
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    return jwk | {"kid": kid, "alg": alg, "use": "sig"}


@dataclass
class FakeOP:
    """An OpenID Provider answering from memory; `id_token` is what the token endpoint returns."""

    id_token: str | None = None
    keys: list[dict[str, Any]] = field(default_factory=lambda: [public_jwk(RSA_KEY, "k1", "RS256")])
    userinfo: dict[str, Any] = field(default_factory=dict)
    token_status: int = 200
    issuer: str = ISSUER
    requests: list[str] = field(default_factory=list)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request.url.path)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx2.Response(
                200,
                json={
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "userinfo_endpoint": f"{ISSUER}/userinfo",
                    "jwks_uri": f"{ISSUER}/jwks",
                    "code_challenge_methods_supported": ["S256"],
                },
            )
        if request.url.path == "/jwks":
            return httpx2.Response(200, json={"keys": self.keys})
        if request.url.path == "/token":
            body = {"access_token": "at-1", "token_type": "Bearer"}
            if self.id_token is not None:
                body["id_token"] = self.id_token
            return httpx2.Response(
                self.token_status, json=body if self.token_status == 200 else {"error": "x"}
            )
        if request.url.path == "/userinfo":
            return httpx2.Response(200, json=self.userinfo)
        return httpx2.Response(404)


def sign(claims: dict[str, Any], *, key: Any = RSA_KEY, alg: str = "RS256", kid: str | None = "k1") -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": "u1", "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": NONCE}
    payload |= claims
    payload = {name: value for name, value in payload.items() if value is not None}
    headers = {"kid": kid} if kid else {}
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


@pytest.fixture
def op() -> FakeOP:
    return FakeOP(userinfo={"sub": "u1", "email": "u1@example.com", "email_verified": True})


@pytest.fixture
async def make_provider(op: FakeOP) -> AsyncIterator[Callable[..., OIDCProvider]]:
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(op.handle)) as http:

        def make(cls: Callable[..., OIDCProvider] = OIDCProvider, *args: Any, **kwargs: Any) -> OIDCProvider:
            discovery = f"{ISSUER}/.well-known/openid-configuration"
            return cls(*args, CLIENT_ID, "secret", discovery_url=discovery, http=http, **kwargs)

        yield make


async def complete(provider: OIDCProvider) -> Any:
    return await provider.complete(
        code="c", redirect_uri="https://gw/cb", code_verifier="v" * 43, nonce=NONCE
    )


async def test_a_good_token_with_email_in_it_skips_userinfo(op: FakeOP, make_provider: Any) -> None:
    op.id_token = sign({"email": "a@example.com", "email_verified": "true", "groups": ["g"]})
    identity = await complete(make_provider())
    assert (identity.email, identity.email_verified, identity.groups) == ("a@example.com", True, {"g"})
    assert "/userinfo" not in op.requests


async def test_userinfo_fills_in_what_the_token_lacks(op: FakeOP, make_provider: Any) -> None:
    op.id_token = sign({})
    identity = await complete(make_provider(groups_claim=None))
    assert (identity.email, identity.email_verified) == ("u1@example.com", True)
    op.userinfo["sub"] = "someone-else"
    with pytest.raises(IdentityProviderError) as caught:
        await complete(make_provider(groups_claim=None))
    assert caught.value.kind == "provider_error"


@dataclass(frozen=True)
class FromNow:
    """A time claim relative to when the test runs, not to when the suite was collected
    (a long run would otherwise carry "the future" into the past)."""

    seconds: int


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"exp": FromNow(-120)}, "expired"),
        ({"iat": FromNow(600), "exp": FromNow(900)}, "future"),
        ({"aud": "another-client"}, "another client"),
        ({"aud": [CLIENT_ID, "another-client"]}, "azp"),
        ({"aud": [CLIENT_ID, "another-client"], "azp": "another-client"}, "azp"),
        ({"azp": "another-client"}, "azp"),
        ({"iss": "https://evil.test"}, "issuer"),
        ({"nonce": None}, "nonce"),
        ({"nonce": "replayed"}, "nonce"),
        ({"sub": None}, "'sub'"),
        ({"iat": None}, "'iat'"),
    ],
    ids=[
        "expired",
        "issued-in-future",
        "wrong-aud",
        "many-aud-no-azp",
        "many-aud-wrong-azp",
        "wrong-azp",
        "wrong-iss",
        "no-nonce",
        "wrong-nonce",
        "no-sub",
        "no-iat",
    ],
)
async def test_bad_claims_are_refused(
    op: FakeOP, make_provider: Any, claims: dict[str, Any], words: str
) -> None:
    now = int(time.time())
    op.id_token = sign({name: now + v.seconds if isinstance(v, FromNow) else v for name, v in claims.items()})
    with pytest.raises(IdentityProviderError) as caught:
        await complete(make_provider())
    assert caught.value.kind == "invalid_id_token"
    assert words in caught.value.message


async def test_small_clock_skew_is_tolerated(op: FakeOP, make_provider: Any) -> None:
    op.id_token = sign({"exp": int(time.time()) - 20, "email": "a@example.com"})
    assert (await complete(make_provider(groups_claim=None))).subject == "u1"


async def test_several_audiences_with_our_azp_are_accepted(op: FakeOP, make_provider: Any) -> None:
    op.id_token = sign({"aud": [CLIENT_ID, "api"], "azp": CLIENT_ID, "email": "a@example.com"})
    assert (await complete(make_provider(groups_claim=None))).subject == "u1"


@pytest.mark.parametrize(
    "forge",
    [
        lambda: jwt.encode({"sub": "u1"}, "secret" * 8, algorithm="HS256", headers={"kid": "k1"}),
        lambda: jwt.encode({"sub": "u1"}, "", algorithm="none"),
        lambda: sign({}, key=rsa.generate_private_key(65537, 2048)),
        lambda: sign({})[:-8] + "AAAAAAAA",
        lambda: "not.a.jwt",
    ],
    ids=["hmac-with-secret", "alg-none", "other-key-same-kid", "tampered", "garbage"],
)
async def test_forged_tokens_are_refused(op: FakeOP, make_provider: Any, forge: Callable[[], str]) -> None:
    op.id_token = forge()
    with pytest.raises(IdentityProviderError) as caught:
        await complete(make_provider())
    assert caught.value.kind == "invalid_id_token"


async def test_without_kid_only_an_unambiguous_key_is_used(op: FakeOP, make_provider: Any) -> None:
    op.keys.append(public_jwk(EC_KEY, "k2", "ES256"))
    op.id_token = sign({"email": "a@example.com"}, key=EC_KEY, alg="ES256", kid=None)
    assert (await complete(make_provider(groups_claim=None))).subject == "u1"
    op.keys.append(public_jwk(ec.generate_private_key(ec.SECP256R1()), "k3", "ES256"))
    op.id_token = sign({"email": "a@example.com"}, key=EC_KEY, alg="ES256", kid=None)
    with pytest.raises(IdentityProviderError) as caught:
        await complete(make_provider(groups_claim=None))
    assert "key" in caught.value.message


async def test_missing_id_token_and_failing_token_endpoint(op: FakeOP, make_provider: Any) -> None:
    with pytest.raises(IdentityProviderError) as no_token:
        await complete(make_provider())
    assert no_token.value.kind == "invalid_id_token"
    op.token_status = 503
    with pytest.raises(IdentityProviderError) as down:
        await complete(make_provider())
    assert down.value.kind == "provider_error"


async def test_authorization_url_needs_discovery_first(make_provider: Any) -> None:
    provider = make_provider()
    with pytest.raises(IdentityProviderError) as caught:
        provider.authorization_url(redirect_uri="https://gw/cb", state="s", nonce="n", code_verifier="v")
    assert caught.value.kind == "not_configured"
    await provider.discover()
    assert provider.authorization_url(redirect_uri="https://gw/cb", state="s", nonce="n", code_verifier="v")


async def test_azure_multi_tenant_issuer_and_email_rules(op: FakeOP, make_provider: Any) -> None:
    op.issuer = "https://login.test/{tenantid}/v2.0"
    tenant = "0b5a7c2e-tenant"
    op.id_token = sign({"iss": f"https://login.test/{tenant}/v2.0", "tid": tenant, "email": "a@contoso.com"})
    identity = await complete(make_provider(AzureProvider, "organizations"))
    assert (identity.email, identity.email_verified) == ("a@contoso.com", False)

    op.id_token = sign(
        {
            "iss": f"https://login.test/{tenant}/v2.0",
            "tid": tenant,
            "email": "a@contoso.com",
            "xms_edov": True,
        }
    )
    assert (await complete(make_provider(AzureProvider, "organizations"))).email_verified is True

    op.id_token = sign(
        {"iss": f"https://login.test/{tenant}/v2.0", "tid": tenant, "preferred_username": "b@contoso.com"}
    )
    identity = await complete(make_provider(AzureProvider, "organizations"))
    assert (identity.email, identity.email_verified) == ("b@contoso.com", False)

    op.id_token = sign({"iss": "https://login.test/other-tenant/v2.0", "tid": tenant})
    with pytest.raises(IdentityProviderError) as caught:
        await complete(make_provider(AzureProvider, "organizations"))
    assert "issuer" in caught.value.message

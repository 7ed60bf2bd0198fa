"""The `IdentityProvider` protocol, `Identity`, and the per-login random values."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from mcp_front.auth.server import AuthorizationServer
from mcp_front.config import load_config
from mcp_front.idp import Identity, IdentityProvider, IdentityProviderError
from mcp_front.idp.pkce import new_token, s256_challenge
from mcp_front.storage import MemoryStore


class StaticTeamProvider(IdentityProvider):
    """A custom provider, as a user would write one: it subclasses the protocol, writes its
    three required members and inherits the optional hooks."""

    name = "static-team"

    def __init__(self, users: dict[str, str]) -> None:
        self._users = users  # code -> email

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        query = urlencode({"redirect_uri": redirect_uri, "state": state})
        return f"https://login.example.com/pick-user?{query}"

    async def complete(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
        email = self._users.get(code)
        if email is None:
            raise IdentityProviderError(
                "exchange_failed", "that sign-in link has expired; please start again"
            )
        return Identity(subject=email, email=email, email_verified=True, groups=frozenset({"team"}))


async def sign_in(provider: IdentityProvider, code: str) -> Identity:
    """What the authorization server does with any provider."""
    provider.authorization_url(redirect_uri="https://gw.example/cb", state="s", nonce="n", code_verifier="v")
    return await provider.complete(
        code=code, redirect_uri="https://gw.example/cb", code_verifier="v", nonce="n"
    )


async def test_a_custom_provider_implements_the_protocol() -> None:
    provider = StaticTeamProvider({"c-1": "ada@example.com"})
    assert isinstance(provider, IdentityProvider)
    identity = await sign_in(provider, "c-1")
    assert (identity.subject, identity.email_verified, identity.groups) == (
        "ada@example.com",
        True,
        frozenset({"team"}),
    )
    with pytest.raises(IdentityProviderError) as caught:
        await sign_in(provider, "c-2")
    assert caught.value.kind == "exchange_failed"


async def test_the_optional_hooks_do_nothing_unless_overridden() -> None:
    provider = StaticTeamProvider({})
    assert await provider.discover() is None
    await provider.aclose()

    class WithoutHooks:
        name = "bare"

        def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
            return "https://login.example.com/"

        async def complete(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
            return Identity(subject="x")

    # Without the base class, the hooks are the class's to write: it is not a provider yet,
    # and a gateway given one says so when it is built, not when it starts serving.
    assert not isinstance(WithoutHooks(), IdentityProvider)
    config = load_config(
        {
            "proxy": {
                "baseURL": "https://gw.example",
                "auth": {
                    "kind": "oauth",
                    "issuer": "https://gw.example",
                    "allowedDomains": ["example.com"],
                    "encryptionKey": "k" * 32,
                    "storage": {"kind": "memory"},
                    "idp": {
                        "provider": "google",
                        "clientId": "c",
                        "clientSecret": "s",
                        "redirectUri": "https://gw.example/oauth/callback",
                    },
                },
            }
        },
        environ={},
    )
    with pytest.raises(TypeError) as raised:
        AuthorizationServer.of(config, store=MemoryStore(), idp=WithoutHooks())  # type: ignore[arg-type]
    assert str(raised.value) == (
        "identity provider WithoutHooks has no discover, aclose: subclass mcp_front.IdentityProvider, "
        "which provides discover() and aclose() with default behaviour"
    )


def test_identity_is_immutable_including_its_claims() -> None:
    claims = {"sub": "u1", "roles": ["a"]}
    identity = Identity(subject="u1", claims=claims)
    claims["sub"] = "changed"
    assert identity.claims["sub"] == "u1"
    with pytest.raises(TypeError):
        identity.claims["sub"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        identity.subject = "u2"  # type: ignore[misc]
    assert (identity.email, identity.email_verified) == (None, False)
    assert (identity.orgs, identity.hosted_domain) == (frozenset(), None)


def test_error_carries_kind_and_a_message_for_people() -> None:
    error = IdentityProviderError("network", "could not reach the identity provider")
    assert str(error) == "could not reach the identity provider"
    assert error.kind == "network"
    assert repr(error) == "IdentityProviderError('network', 'could not reach the identity provider')"


def test_s256_challenge_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_new_tokens_are_long_enough_for_pkce_and_never_repeat() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(43 <= len(token) <= 128 and token.isalnum() for token in tokens)

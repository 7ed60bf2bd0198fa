"""A real Starlette app with `/authorize`, the callback and the consent form, and fakes around it."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from mcp.shared.auth import OAuthClientInformationFull
from starlette.applications import Starlette
from starlette.routing import Route

from mcp_front.auth.audience import AudienceValidator
from mcp_front.auth.authorize import authorize_endpoint
from mcp_front.auth.callback import callback_endpoint
from mcp_front.auth.codes import AuthorizationCodes
from mcp_front.auth.consent import Consents, consent_endpoint
from mcp_front.auth.sign_in_policy import SignInPolicy
from mcp_front.idp.base import Identity, IdentityProvider, IdentityProviderError
from mcp_front.storage import MemoryStore

ISSUER = "https://gw.example.com"
CALLBACK = f"{ISSUER}/oauth/callback"
RESOURCE = f"{ISSUER}/linear"
APP_REDIRECT = "https://app.example.com/cb"
VERIFIER = "v" * 50
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
ADA = Identity(subject="sub-ada", email="ada@example.com", email_verified=True, groups=frozenset({"eng"}))


class FakeIdP(IdentityProvider):
    """An identity provider without a network: it accepts the code `good-code`."""

    name = "testidp"

    def __init__(self) -> None:
        self.identity: Identity = ADA
        self.failure: IdentityProviderError | None = None
        self.started: dict[str, dict[str, str]] = {}
        self.completed: list[dict[str, str]] = []

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        self.started[state] = {"redirect_uri": redirect_uri, "nonce": nonce, "code_verifier": code_verifier}
        return "https://idp.example/authorize?" + urlencode({"state": state, "redirect_uri": redirect_uri})

    async def complete(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
        self.completed.append({"code": code, "redirect_uri": redirect_uri, "verifier": code_verifier})
        if self.failure is not None:
            raise self.failure
        if code != "good-code":
            raise IdentityProviderError("exchange_failed", "The code was refused.")
        if not any(
            s["code_verifier"] == code_verifier and s["nonce"] == nonce for s in self.started.values()
        ):
            raise IdentityProviderError("invalid_id_token", "nonce or verifier mismatch")
        return self.identity


class FakeClients:
    def __init__(self, *clients: OAuthClientInformationFull) -> None:
        self.clients = {c.client_id: c for c in clients if c.client_id}

    async def get(self, client_id: str, *, requester: str | None = None) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def authenticate(
        self, client_id: str, client_secret: str | None
    ) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)


def client_info(client_id: str, *redirects: str, name: str | None = "Test App") -> OAuthClientInformationFull:
    return OAuthClientInformationFull(
        client_id=client_id,
        redirect_uris=list(redirects),
        client_name=name,
        token_endpoint_auth_method="none",
    )


@dataclass
class Gateway:
    http: httpx2.AsyncClient
    idp: FakeIdP
    codes: AuthorizationCodes
    consents: Consents
    store: MemoryStore
    clients: FakeClients
    policy: dict[str, SignInPolicy] = field(default_factory=dict)

    async def authorize(self, **overrides: str | None) -> httpx2.Response:
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": "app",
            "redirect_uri": APP_REDIRECT,
            "state": "client-state",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
            "resource": RESOURCE,
            "scope": "mcp",
        }
        params.update(overrides)
        query = {k: v for k, v in params.items() if v is not None}
        return await self.http.get("/authorize", params=query)

    async def sign_in(self, **overrides: str | None) -> str:
        """Run /authorize and return the state the gateway gave the identity provider."""
        response = await self.authorize(**overrides)
        assert response.status_code == 302, response.text
        return query_of(response.headers["location"])["state"]

    async def callback(self, state: str, **params: str) -> httpx2.Response:
        return await self.http.get("/oauth/callback", params={"state": state, "code": "good-code", **params})


def refusal_of(
    response: httpx2.Response, redirect_uri: str = APP_REDIRECT, *, status: int | None = None
) -> dict[str, str]:
    """The error an untrusted client's refused request carries: a page (never a redirect)
    whose one link returns the user to `redirect_uri` with the error."""
    assert response.status_code in ((status,) if status else (400, 403)), response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    links = re.findall(r'<a href="([^"]+)"', response.text)
    assert len(links) == 1, links
    target = html.unescape(links[0])
    assert target.startswith(redirect_uri + "?")
    assert f"Return to {urlsplit(redirect_uri).netloc}" in response.text
    return query_of(target)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def build(
    **options: Any,
) -> tuple[Starlette, FakeIdP, AuthorizationCodes, Consents, MemoryStore, FakeClients]:
    store = MemoryStore()
    idp = FakeIdP()
    codes = AuthorizationCodes(store)
    consents = Consents(store)
    clients = FakeClients(
        client_info("app", APP_REDIRECT, "https://app.example.com/other"),
        client_info("native", "http://127.0.0.1/callback", "claude://callback"),
        client_info("trusted", "https://trusted.example.com/cb", name="Trusted"),
        client_info("evil", "https://evil.example.com/cb", name="<script>alert(1)</script>"),
        client_info("https://meta.example.org/client.json", "https://app2.example.net/cb", name="Meta"),
    )
    audiences = AudienceValidator(ISSUER, ["linear", "notion"])
    policy = options.pop("policy", SignInPolicy.of(allowed_domains=["example.com"]))
    app = Starlette(
        routes=[
            Route(
                "/authorize",
                authorize_endpoint(
                    clients=clients,
                    store=store,
                    idp=idp,
                    audiences=audiences,
                    issuer=ISSUER,
                    callback_url=CALLBACK,
                    **{"trusted_clients": frozenset({"trusted"}), **options},
                ),
                methods=["GET", "POST"],
            ),
            Route(
                "/oauth/callback",
                callback_endpoint(
                    store=store,
                    idp=idp,
                    policy=policy,
                    codes=codes,
                    consents=consents,
                    trusted_clients=frozenset({"trusted"}),
                    issuer=ISSUER,
                    clients=clients,
                    callback_url=CALLBACK,
                ),
            ),
            Route(
                "/oauth/consent",
                consent_endpoint(store=store, codes=codes, consents=consents, issuer=ISSUER),
                methods=["POST"],
            ),
        ]
    )
    return app, idp, codes, consents, store, clients


async def open_gateway(**options: Any) -> AsyncIterator[Gateway]:
    app, idp, codes, consents, store, clients = build(**options)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield Gateway(http, idp, codes, consents, store, clients)


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async for gateway in open_gateway():
        yield gateway

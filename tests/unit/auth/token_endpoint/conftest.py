"""A real Starlette app with `/token` and `/revoke` over in-memory parts and a fake clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from mcp.shared.auth import OAuthClientInformationFull
from starlette.applications import Starlette
from starlette.routing import Route

from mcp_front.auth.audience import AudienceValidator
from mcp_front.auth.codes import AuthorizationCode, AuthorizationCodes
from mcp_front.auth.refresh import RefreshTokens
from mcp_front.auth.revocations import RevokedAccessTokens
from mcp_front.auth.rfc6749 import token_endpoint
from mcp_front.auth.rfc7009 import revocation_endpoint
from mcp_front.auth.tokens import SigningKey, SigningKeys, TokenIssuer
from mcp_front.storage import MemoryStore

BASE = "https://gw.example.com"
LINEAR = f"{BASE}/linear"
NOTION = f"{BASE}/notion"
REDIRECT = "http://127.0.0.1:33418/callback"
VERIFIER = "v" * 43 + "-._~0123456789"
KEY = SigningKey.generate()


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeClients:
    """`RegisteredClients` over a dict; secrets compared in constant time."""

    def __init__(self) -> None:
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.secrets: dict[str, str] = {}

    def add(self, client_id: str, secret: str | None = None, **extra: Any) -> None:
        method = "client_secret_basic" if secret is not None else "none"
        self.clients[client_id] = OAuthClientInformationFull(
            client_id=client_id,
            redirect_uris=[REDIRECT],
            token_endpoint_auth_method=extra.pop("token_endpoint_auth_method", method),
            **extra,
        )
        if secret is not None:
            self.secrets[client_id] = secret

    async def get(self, client_id: str, *, requester: str | None = None) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def authenticate(
        self, client_id: str, client_secret: str | None
    ) -> OAuthClientInformationFull | None:
        client = self.clients.get(client_id)
        if client is None:
            return None
        expected = self.secrets.get(client_id)
        if expected is None:
            return client if client_secret is None else None
        if client_secret is None:
            return None
        return client if hmac.compare_digest(expected.encode(), client_secret.encode()) else None


@dataclass
class Env:
    clock: Clock
    clients: FakeClients
    codes: AuthorizationCodes
    refresh: RefreshTokens
    issuer: TokenIssuer
    audiences: AudienceValidator
    revoked: RevokedAccessTokens
    http: httpx2.AsyncClient = field(init=False)

    async def code(self, *, client_id: str = "public", **overrides: Any) -> str:
        values: dict[str, Any] = {
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge(VERIFIER),
            "resource": LINEAR,
            "scope": ("mcp",),
            "subject": "user-1",
            "email": "ada@example.com",
            "issued_at": self.clock(),
            "groups": ("eng",),
        }
        values.update(overrides)
        return await self.codes.issue(AuthorizationCode(**values))

    async def exchange(self, code: str, **form: str) -> httpx2.Response:
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
            "client_id": "public",
            **form,
        }
        return await self.http.post("/token", data={k: v for k, v in body.items() if v is not None})

    async def tokens(self, **form: str) -> dict[str, Any]:
        response = await self.exchange(await self.code(), **form)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def refresh_with(self, token: str, **form: str) -> httpx2.Response:
        body = {"grant_type": "refresh_token", "refresh_token": token, "client_id": "public", **form}
        return await self.http.post("/token", data=body)


def build_app(env: Env) -> Starlette:
    common: dict[str, Any] = {
        "clients": env.clients,
        "refresh_tokens": env.refresh,
        "issuer": env.issuer,
        "revoked": env.revoked,
    }
    return Starlette(
        routes=[
            Route(
                "/token",
                token_endpoint(codes=env.codes, audiences=env.audiences, **common),
                methods=["POST"],
            ),
            Route("/revoke", revocation_endpoint(**common), methods=["POST"]),
        ]
    )


def make_env() -> Env:
    clock = Clock()
    store = MemoryStore(clock=clock)
    clients = FakeClients()
    clients.add("public")
    clients.add("other")
    clients.add("confidential", "s3cret:with/odd+chars")
    env = Env(
        clock=clock,
        clients=clients,
        codes=AuthorizationCodes(store, clock=clock),
        refresh=RefreshTokens(store, grace=timedelta(seconds=10), clock=clock),
        issuer=TokenIssuer(SigningKeys(KEY), BASE, clock=clock),
        audiences=AudienceValidator(BASE, ["linear", "notion"]),
        revoked=RevokedAccessTokens(store, clock=clock),
    )
    env.http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=build_app(env)), base_url=BASE)
    return env


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    built = make_env()
    async with built.http:
        yield built


def assert_error(response: httpx2.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text
    assert "access_token" not in response.text
    assert_no_store(response)


def assert_no_store(response: httpx2.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"

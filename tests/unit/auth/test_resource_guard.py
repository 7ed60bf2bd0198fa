"""ResourceGuard with OAuth access tokens, static credentials, or both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send

from mcp_front.auth.bearer import AccessTokenVerifier
from mcp_front.auth.principal import Principal
from mcp_front.auth.resource import OAuthResource, ResourceGuard
from mcp_front.auth.service_auth import StaticCredentials
from mcp_front.auth.tokens import SigningKey, SigningKeys, TokenIssuer
from mcp_front.config import BearerServiceAuth

BASE = "https://gw.example.com"
ISSUER = TokenIssuer(SigningKeys(SigningKey.generate()), BASE)
METADATA = f"{BASE}/.well-known/oauth-protected-resource/linear"


async def whoami(scope: Scope, receive: Receive, send: Send) -> None:
    principal: Principal = scope["user"]
    body = f"{principal.subject}|{principal.email}|{principal.client_id}|{','.join(sorted(principal.scopes))}"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body.encode()})


def token(audience: str, subject: str = "user-1") -> str:
    return ISSUER.issue_access_token(
        subject=subject, audience=audience, client_id="client-1", scope=["mcp"], email="ada@example.com"
    ).token


class Revocations:
    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.lookups = 0

    async def __call__(self, jti: str, session: str | None, client_id: str | None) -> bool:
        self.lookups += 1
        return jti in self.revoked or session in self.revoked or client_id in self.revoked


def guard(revocations: Revocations | None = None, *, static: bool = False) -> ResourceGuard:
    verifier = AccessTokenVerifier(ISSUER, is_revoked=revocations)
    oauth = OAuthResource(resource=f"{BASE}/linear", metadata_url=METADATA, verifier=verifier, scope="mcp")
    credentials = (
        StaticCredentials(
            "linear", [BearerServiceAuth(type="bearer", tokens=[SecretStr("ci-token")], user="ci")]
        )
        if static
        else None
    )
    return ResourceGuard(whoami, service="linear", credentials=credentials, oauth=oauth)


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=guard(static=True)), base_url=BASE
    ) as http:
        yield http


async def test_a_token_for_the_service_is_accepted_and_becomes_the_principal(
    client: httpx2.AsyncClient,
) -> None:
    response = await client.post(
        "/linear/mcp", headers={"Authorization": f"Bearer {token(f'{BASE}/linear')}"}
    )
    assert response.status_code == 200
    assert response.text == "user-1|ada@example.com|client-1|mcp"


@pytest.mark.parametrize(
    "audience", [f"{BASE}/notion", f"{BASE}/linear2", "https://other.example.com/linear"]
)
async def test_a_token_for_another_resource_gets_invalid_token(
    client: httpx2.AsyncClient, audience: str
) -> None:
    response = await client.post("/linear/mcp", headers={"Authorization": f"Bearer {token(audience)}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="mcp-front", resource_metadata="{METADATA}", scope="mcp", '
        'error="invalid_token", error_description="The access token is invalid"'
    )
    assert response.json()["error"] == "invalid_token"


async def test_no_token_gets_a_challenge_without_an_error_code(client: httpx2.AsyncClient) -> None:
    response = await client.get("/linear/sse")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="mcp-front", resource_metadata="{METADATA}", scope="mcp"'
    )


async def test_static_service_credentials_work_beside_oauth(client: httpx2.AsyncClient) -> None:
    response = await client.post("/linear/mcp", headers={"Authorization": "Bearer ci-token"})
    assert response.status_code == 200
    assert response.text.startswith("ci|")


async def test_tampered_and_garbage_tokens_are_refused(client: httpx2.AsyncClient) -> None:
    good = token(f"{BASE}/linear")
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    for bad in [tampered, "not-a-jwt", "a.b.c", ""]:
        response = await client.post("/linear/mcp", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, bad


async def test_revoked_tokens_are_refused_and_lookups_are_cached() -> None:
    revocations = Revocations()
    app = guard(revocations)
    good, revoked = token(f"{BASE}/linear"), token(f"{BASE}/linear", subject="user-2")
    revocations.revoked.add(ISSUER.verify_access_token(revoked, audience=f"{BASE}/linear").jti)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as http:
        for _ in range(3):
            assert (
                await http.post("/linear/mcp", headers={"Authorization": f"Bearer {good}"})
            ).status_code == 200
            assert (
                await http.post("/linear/mcp", headers={"Authorization": f"Bearer {revoked}"})
            ).status_code == 401
    assert revocations.lookups == 2


class CountingIssuer(TokenIssuer):
    verifications = 0

    def verify_access_token(self, token: str, **kwargs: Any) -> Any:
        CountingIssuer.verifications += 1
        return super().verify_access_token(token, **kwargs)


async def test_a_verified_token_is_remembered_until_it_expires() -> None:
    now = [1_000_000.0]
    issuer = CountingIssuer(SigningKeys(SigningKey.generate()), BASE, clock=lambda: now[0])
    verifier = AccessTokenVerifier(issuer, wall_clock=lambda: now[0])
    token = issuer.issue_access_token(
        subject="u", audience=f"{BASE}/linear", client_id="c", scope=["mcp"], email=None
    ).token
    CountingIssuer.verifications = 0
    for _ in range(5):
        assert await verifier.verify(token, f"{BASE}/linear") is not None
    assert CountingIssuer.verifications == 1
    # The same token for another resource is checked afresh (and refused).
    assert await verifier.verify(token, f"{BASE}/notion") is None
    now[0] += 3600 + 60  # past the expiry and its leeway
    assert await verifier.verify(token, f"{BASE}/linear") is None


async def test_rotating_the_keys_forgets_remembered_tokens() -> None:
    issuer = CountingIssuer(SigningKeys(SigningKey.generate()), BASE)
    verifier = AccessTokenVerifier(issuer)
    token = issuer.issue_access_token(
        subject="u", audience=f"{BASE}/linear", client_id="c", scope=["mcp"], email=None
    ).token
    assert await verifier.verify(token, f"{BASE}/linear") is not None
    issuer.keys = SigningKeys(SigningKey.generate())
    assert await verifier.verify(token, f"{BASE}/linear") is None


async def test_a_websocket_is_refused_not_passed_on_unguarded() -> None:
    reached: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        reached.append(str(scope["type"]))

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    guard_ = ResourceGuard(app, service="linear", credentials=None)  # type: ignore[arg-type]
    await guard_({"type": "websocket", "path": "/linear/mcp", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert reached == []

"""`POST /register` through a real Starlette app, and the registration rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from mcp_front.auth.client_store import StoredClients
from mcp_front.auth.registration import MAX_REGISTRATION_BYTES, RegistrationRateLimit, registration_endpoint
from mcp_front.storage import MemoryStore

CLAUDE = {
    "client_name": "Claude",
    "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_app(limiter: RegistrationRateLimit | None = None) -> tuple[Starlette, StoredClients]:
    clients = StoredClients(MemoryStore())
    limiter = limiter or RegistrationRateLimit(100, timedelta(minutes=1), 1000, timedelta(minutes=1))
    endpoint = registration_endpoint(clients, limiter)
    return Starlette(routes=[Route("/register", endpoint, methods=["POST", "GET"])]), clients


@pytest.fixture
async def app() -> AsyncIterator[tuple[httpx2.AsyncClient, StoredClients]]:
    application, clients = make_app()
    transport = httpx2.ASGITransport(app=application)
    async with httpx2.AsyncClient(transport=transport, base_url="https://gw.example") as http:
        yield http, clients


async def test_register_public_client(app: tuple[httpx2.AsyncClient, StoredClients]) -> None:
    http, clients = app
    response = await http.post("/register", json=CLAUDE)
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert "client_secret" not in body
    assert body["client_name"] == "Claude"
    assert body["redirect_uris"] == CLAUDE["redirect_uris"]
    assert body["token_endpoint_auth_method"] == "none"
    assert isinstance(body["client_id_issued_at"], int)
    assert await clients.get(body["client_id"]) is not None
    again = await http.post("/register", json=CLAUDE)
    assert again.status_code == 201
    assert again.json()["client_id"] == body["client_id"]


async def test_register_confidential_client(app: tuple[httpx2.AsyncClient, StoredClients]) -> None:
    http, clients = app
    response = await http.post(
        "/register", json={**CLAUDE, "token_endpoint_auth_method": "client_secret_basic", "scope": "mcp"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["client_secret_expires_at"] == 0
    assert body["scope"] == "mcp"
    assert await clients.authenticate(body["client_id"], body["client_secret"]) is not None


async def test_sdk_client_metadata_round_trips(app: tuple[httpx2.AsyncClient, StoredClients]) -> None:
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata

    http, _ = app
    request = OAuthClientMetadata(redirect_uris=["http://localhost:3030/callback"], client_name="SDK")
    response = await http.post(
        "/register",
        content=request.model_dump_json(exclude_none=True),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    info = OAuthClientInformationFull.model_validate(response.json())
    assert info.client_secret is not None


@pytest.mark.parametrize(
    ("kwargs", "status", "error", "needle"),
    [
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "invalid_client_metadata",
            "not valid JSON",
        ),
        (
            {"content": b"[]", "headers": {"content-type": "application/json"}},
            400,
            "invalid_client_metadata",
            "JSON object",
        ),
        ({"data": {"redirect_uris": "x"}}, 400, "invalid_client_metadata", "application/json"),
        (
            {"json": {**CLAUDE, "redirect_uris": ["http://evil.example/cb"]}},
            400,
            "invalid_redirect_uri",
            "non-loopback",
        ),
        ({"json": {**CLAUDE, "grant_types": ["password"]}}, 400, "invalid_client_metadata", "password"),
        (
            {
                "content": b'{"a":"' + b"x" * MAX_REGISTRATION_BYTES + b'"}',
                "headers": {"content-type": "application/json"},
            },
            413,
            "invalid_client_metadata",
            "exceeds",
        ),
    ],
)
async def test_errors_are_rfc7591_json(
    app: tuple[httpx2.AsyncClient, StoredClients],
    kwargs: dict[str, Any],
    status: int,
    error: str,
    needle: str,
) -> None:
    http, _ = app
    response = await http.post("/register", **kwargs)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error
    assert needle in body["error_description"]


async def test_body_cap_without_content_length(app: tuple[httpx2.AsyncClient, StoredClients]) -> None:
    http, _ = app

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    response = await http.post("/register", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_get_is_refused(app: tuple[httpx2.AsyncClient, StoredClients]) -> None:
    http, _ = app
    response = await http.get("/register")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_rate_limited_per_ip() -> None:
    clock = FakeClock()
    limiter = RegistrationRateLimit(2, timedelta(seconds=60), 100, timedelta(seconds=60), clock=clock)
    application, _ = make_app(limiter)
    transport = httpx2.ASGITransport(app=application, client=("203.0.113.7", 1234))
    async with httpx2.AsyncClient(transport=transport, base_url="https://gw.example") as http:
        assert (await http.post("/register", json=CLAUDE)).status_code == 201
        clock.now += 10
        assert (await http.post("/register", json=CLAUDE)).status_code == 201
        refused = await http.post("/register", json=CLAUDE)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "50"
        assert refused.json()["error"] == "temporarily_unavailable"
        clock.now += 50
        assert (await http.post("/register", json=CLAUDE)).status_code == 201
    other = httpx2.ASGITransport(app=application, client=("203.0.113.8", 1234))
    async with httpx2.AsyncClient(transport=other, base_url="https://gw.example") as http:
        assert (await http.post("/register", json=CLAUDE)).status_code == 201


def test_overall_limit_and_bounded_memory() -> None:
    clock = FakeClock()
    limiter = RegistrationRateLimit(
        5, timedelta(seconds=10), 3, timedelta(seconds=60), max_tracked_ips=2, clock=clock
    )
    assert [limiter.acquire(f"10.0.0.{n}") for n in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("10.0.0.9") == 60.0
    clock.now += 60
    assert limiter.acquire("10.0.0.9") == 0.0
    assert len(limiter._by_ip) <= 2


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RegistrationRateLimit(0, timedelta(seconds=1), 1, timedelta(seconds=1))
    with pytest.raises(ValueError, match="positive"):
        RegistrationRateLimit(1, timedelta(seconds=1), 1, timedelta(0))

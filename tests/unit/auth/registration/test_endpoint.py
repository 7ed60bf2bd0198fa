"""`POST /register` through a real Starlette app, and the budget of new clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from mcp_front.auth.client_store import StoredClients
from mcp_front.auth.registration import MAX_REGISTRATION_BYTES, NewClientBudget, registration_endpoint
from mcp_front.rate_limit import MemoryRateLimiter, RateLimit
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


def make_app(budget: NewClientBudget | None = None) -> tuple[Starlette, StoredClients]:
    clients = StoredClients(MemoryStore())
    endpoint = registration_endpoint(clients, budget)
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


def confidential(name: str) -> dict[str, Any]:
    return {**CLAUDE, "client_name": name, "token_endpoint_auth_method": "client_secret_basic"}


async def test_new_clients_are_limited_per_address_and_reuse_is_free() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    budget = NewClientBudget(limiter, per_address=RateLimit(2, timedelta(seconds=60)), overall=None)
    application, _ = make_app(budget)
    transport = httpx2.ASGITransport(app=application, client=("203.0.113.7", 1234))
    async with httpx2.AsyncClient(transport=transport, base_url="https://gw.example") as http:
        assert (await http.post("/register", json=confidential("a"))).status_code == 201
        assert (await http.post("/register", json=CLAUDE)).status_code == 201
        refused = await http.post("/register", json=confidential("b"))
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "30"
        assert refused.json()["error"] == "temporarily_unavailable"
        # Finding an identical public client again creates nothing, so it is not counted.
        for _ in range(5):
            assert (await http.post("/register", json=CLAUDE)).status_code == 201
        clock.now += 30
        assert (await http.post("/register", json=confidential("b"))).status_code == 201
    other = httpx2.ASGITransport(app=application, client=("203.0.113.8", 1234))
    async with httpx2.AsyncClient(transport=other, base_url="https://gw.example") as http:
        assert (await http.post("/register", json=confidential("c"))).status_code == 201


async def test_a_few_addresses_cannot_use_up_the_overall_budget_for_everyone() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    budget = NewClientBudget(
        limiter, per_address=RateLimit(100, timedelta(hours=1)), overall=RateLimit(20, timedelta(hours=1))
    )
    reserved = NewClientBudget.RESERVED_PER_ADDRESS.requests
    admitted = {}
    for attacker in ("198.51.100.1", "198.51.100.2"):
        admitted[attacker] = sum([await budget.admit(attacker) == 0 for _ in range(60)])
    # The first takes its reserve and the whole overall budget; the second only its reserve.
    assert admitted == {"198.51.100.1": reserved + 20, "198.51.100.2": reserved}
    # Someone else still gets their first few.
    assert [await budget.admit("192.0.2.50") for _ in range(reserved)] == [0.0] * reserved
    assert await budget.admit("192.0.2.50") > 0
    # An IPv6 host counts as its /64: its neighbours share the budget.
    from mcp_front.rate_limit import address_key

    assert address_key("2001:db8::1") == address_key("2001:db8::ffff") == "2001:db8::/64"


async def test_holding_many_addresses_of_one_network_does_not_multiply_the_reserve() -> None:
    from mcp_front.rate_limit import address_key

    limiter = MemoryRateLimiter(clock=FakeClock())
    budget = NewClientBudget(
        limiter, per_address=RateLimit(100, timedelta(hours=1)), overall=RateLimit(10, timedelta(hours=1))
    )
    admitted = 0
    for n in range(40):  # forty /64s of one /48, as a tunnel broker hands out
        address = address_key(f"2001:db8:7:{n:x}::1")
        admitted += sum([await budget.admit(address) == 0 for _ in range(7)])
    assert admitted == NewClientBudget.RESERVED_PER_NETWORK.requests + 10

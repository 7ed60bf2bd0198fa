"""Renewals when the service's token endpoint misbehaves: down, refusing, or slow to answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx2
import pytest

from mcp_front.config import ServerConfig
from mcp_front.credentials import Credential, CredentialVault
from mcp_front.credentials.oauth_connections import OAuthConnections, ServiceUnreachable
from mcp_front.crypto import Keyring
from mcp_front.storage import MemoryStore

USER = "user:ada"
TOKEN_URL = "https://linear.example/oauth/token"


def linear() -> ServerConfig:
    return ServerConfig.model_validate(
        {
            "transportType": "streamable-http",
            "url": "https://mcp.linear.example/mcp",
            "requiresUserToken": True,
            "userAuthentication": {
                "type": "oauth",
                "displayName": "Linear",
                "clientId": "gateway",
                "clientSecret": "gateway secret",
                "authorizationUrl": "https://linear.example/oauth/authorize",
                "tokenUrl": TOKEN_URL,
                "revocationUrl": "https://linear.example/oauth/revoke",
                "scopes": ["read"],
            },
        }
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def connections(
    answer: Callable[[httpx2.Request], httpx2.Response], clock: Clock
) -> tuple[OAuthConnections, CredentialVault, list[httpx2.Request]]:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return answer(request)

    vault = CredentialVault(MemoryStore(), Keyring([bytes(range(32))]))
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    found = OAuthConnections(
        vault,
        {"linear": linear()},
        store=MemoryStore(),
        base_url="https://gw.example",
        http=http,
        clock=clock,
    )
    return found, vault, seen


def expiring(clock: Clock, seconds: float = 30.0) -> Credential:
    return Credential(
        service="linear",
        kind="oauth",
        access_token="old-access",
        updated_at=clock.now,
        refresh_token="old-refresh",
        expires_at=clock.now + seconds,
    )


def tokens(access: str, refresh: str | None = "new-refresh") -> httpx2.Response:
    body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": 3600}
    if refresh is not None:
        body["refresh_token"] = refresh
    return httpx2.Response(200, json=body)


async def test_a_renewal_is_authenticated_stored_and_then_used() -> None:
    clock = Clock()
    found, vault, seen = connections(lambda request: tokens("new-access"), clock)
    await vault.put(USER, expiring(clock))
    renewed = await found.usable(USER, "linear", expiring(clock))
    assert renewed.access_token == "new-access"
    assert renewed.refresh_token == "new-refresh"
    stored = await vault.get(USER, "linear")
    assert stored == renewed
    (request,) = seen
    assert request.headers["authorization"].startswith("Basic ")
    form = dict(pair.split("=", 1) for pair in request.content.decode().split("&"))
    assert form == {"grant_type": "refresh_token", "refresh_token": "old-refresh", "client_id": "gateway"}


async def test_a_provider_that_does_not_rotate_keeps_the_old_refresh_token() -> None:
    clock = Clock()
    found, vault, _ = connections(lambda request: tokens("new-access", refresh=None), clock)
    await vault.put(USER, expiring(clock))
    renewed = await found.usable(USER, "linear", expiring(clock))
    assert renewed.refresh_token == "old-refresh"


async def test_an_outage_keeps_a_working_token_and_does_not_hammer_the_provider() -> None:
    clock = Clock()
    found, vault, seen = connections(lambda request: httpx2.Response(503), clock)
    await vault.put(USER, expiring(clock))
    kept = await found.usable(USER, "linear", expiring(clock))
    assert kept.access_token == "old-access"
    stored = await vault.get(USER, "linear")
    assert stored is not None
    assert stored.state == "error"
    assert stored.problem == "Linear could not be reached to renew access."
    assert stored.refresh_token == "old-refresh"
    assert len(seen) == 1
    clock.now += 10  # within the 30 s pause: no new attempt
    assert (await found.usable(USER, "linear", stored)).access_token == "old-access"
    assert len(seen) == 1


async def test_an_outage_after_expiry_is_a_clear_error_and_the_connection_is_kept() -> None:
    clock = Clock()
    found, vault, _ = connections(lambda request: httpx2.Response(502), clock)
    await vault.put(USER, expiring(clock, seconds=-5))
    with pytest.raises(ServiceUnreachable, match="Linear failed"):
        await found.usable(USER, "linear", expiring(clock, seconds=-5))
    stored = await vault.get(USER, "linear")
    assert stored is not None
    assert stored.state == "error"
    assert stored.refresh_token == "old-refresh"


async def test_a_refusal_marks_the_connection_expired() -> None:
    clock = Clock()
    refused = httpx2.Response(400, json={"error": "invalid_grant"})
    found, vault, _ = connections(lambda request: refused, clock)
    await vault.put(USER, expiring(clock))
    after = await found.usable(USER, "linear", expiring(clock))
    assert after.state == "expired"
    assert after.problem == "The service no longer accepts this connection: reconnect it."


async def test_concurrent_callers_share_one_renewal() -> None:
    clock = Clock()
    calls = 0

    def answer(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return tokens(f"access-{calls}", refresh=f"refresh-{calls}")

    found, vault, _ = connections(answer, clock)
    await vault.put(USER, expiring(clock))
    results: list[str] = []

    async def use() -> None:
        results.append((await found.usable(USER, "linear", expiring(clock))).access_token)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(use)
    assert calls == 1
    assert results == ["access-1"] * 10


async def test_revocation_revokes_both_tokens_authenticated() -> None:
    clock = Clock()
    found, _, seen = connections(lambda request: httpx2.Response(200), clock)
    assert await found.revoke(expiring(clock))
    assert [json.dumps(sorted(r.content.decode().split("&"))) for r in seen] == [
        json.dumps(sorted(["token=old-refresh", "token_type_hint=refresh_token", "client_id=gateway"])),
        json.dumps(sorted(["token=old-access", "token_type_hint=access_token", "client_id=gateway"])),
    ]
    assert all(r.headers["authorization"].startswith("Basic ") for r in seen)

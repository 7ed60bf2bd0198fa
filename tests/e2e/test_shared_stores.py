"""`mcp-front serve` on Redis and on PostgreSQL: a sign-in, then a restart, and the tokens
and state are all still there; two processes on one store share them."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.support.clients import connect, text_of
from tests.support.gateway import stdio_service
from tests.support.net import free_port
from tests.support.oidc import OIDCServer, gateway_auth_config
from tests.support.process import gateway_process_on
from tests.support.sign_in import register, sign_in

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("MCP_FRONT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES = os.environ.get("MCP_FRONT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")


def unavailable(what: str, error: BaseException) -> None:
    message = f"{what} is not reachable ({error}); start it (see the env skill)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(params=["redis", "postgres"])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """An empty store of each kind: a key prefix of the test's own in Redis, or a
    PostgreSQL database of the test's own."""
    if request.param == "redis":
        # A prefix of the test's own: other runs on the same Redis are left alone.
        prefix = f"mcp-front-e2e-{secrets.token_hex(4)}:"
        client = Redis.from_url(REDIS_URL)
        try:
            await client.ping()
        except (OSError, RedisConnectionError) as error:
            await client.aclose()
            unavailable("Redis", error)
        yield {"kind": "redis", "url": REDIS_URL, "prefix": prefix}
        async for key in client.scan_iter(match=f"{prefix}*", count=500):
            await client.delete(key)
        await client.aclose()
        return
    name = f"mcp_front_e2e_{secrets.token_hex(4)}"
    try:
        admin = await asyncpg.connect(f"{POSTGRES}/postgres")
    except OSError as error:
        unavailable("PostgreSQL", error)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield {"kind": "postgres", "url": f"{POSTGRES}/{name}"}
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_tokens_outlive_a_restart_and_are_shared_by_two_processes(
    storage: dict[str, Any], port: int, oidc: OIDCServer, tmp_path: Path
) -> None:
    auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc, storage=storage)
    services = {"probe": stdio_service()}
    with gateway_process_on(port, tmp_path, services, auth=auth) as gateway:
        client = (await register(gateway.url)).json()
        tokens = await sign_in(gateway.url, client["client_id"], f"{gateway.url}/probe")
        async with connect(f"{gateway.url}/probe/mcp", token=tokens["access_token"]) as mcp:
            assert text_of(await mcp.call_tool("echo", {"text": "first"})) == "first"
    # Another process on the same store: the client, its refresh token and the signing
    # keys are all there.
    with gateway_process_on(port, tmp_path, services, auth=auth) as gateway:
        async with httpx2.AsyncClient(timeout=30) as http:
            refreshed = await http.post(
                f"{gateway.url}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": tokens["refresh_token"],
                    "client_id": client["client_id"],
                    "resource": f"{gateway.url}/probe",
                },
            )
        assert refreshed.status_code == 200, refreshed.text
        renewed = refreshed.json()
        assert renewed["refresh_token"] != tokens["refresh_token"]
        async with connect(f"{gateway.url}/probe/mcp", token=tokens["access_token"]) as mcp:
            assert text_of(await mcp.call_tool("echo", {"text": "old token"})) == "old token"
        async with connect(f"{gateway.url}/probe/mcp", token=renewed["access_token"]) as mcp:
            assert text_of(await mcp.call_tool("echo", {"text": "second"})) == "second"
        # Within the grace period the previous token gets the same successor again (a client
        # whose answer was lost): the family's state is the store's, not the process's.
        async with httpx2.AsyncClient(timeout=30) as http:
            reused = await http.post(
                f"{gateway.url}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": tokens["refresh_token"],
                    "client_id": client["client_id"],
                    "resource": f"{gateway.url}/probe",
                },
            )
        assert reused.status_code == 200
        assert reused.json()["refresh_token"] == renewed["refresh_token"]


async def test_two_replicas_on_one_store_enforce_one_rate_limit(
    storage: dict[str, Any], port: int, oidc: OIDCServer, tmp_path: Path
) -> None:
    other_port = free_port()
    limits = {"register": {"requests": 2, "per": "1m"}}
    services = {"probe": stdio_service()}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first_auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc, storage=storage)
    second_auth = gateway_auth_config(f"http://127.0.0.1:{other_port}", oidc, storage=storage)
    with (
        gateway_process_on(port, tmp_path / "a", services, auth=first_auth, rateLimits=limits) as first,
        gateway_process_on(
            other_port, tmp_path / "b", services, auth=second_auth, rateLimits=limits
        ) as second,
    ):
        answers = [
            (await register(first.url)).status_code,
            (await register(second.url)).status_code,
            (await register(first.url)).status_code,
            (await register(second.url)).status_code,
        ]
    # Two registrations a minute from this address, for the whole deployment.
    assert answers == [201, 201, 429, 429]

"""/metrics and /ready of a gateway that signs users in through a real OpenID Provider:
token grants and /token refusals counted, the store (SQLite) answering /ready, and a
Redis outage seen by /ready and counted in the metrics."""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from redis.asyncio import Redis

from tests.servers.conformance import ServerProcess
from tests.support.gateway import SERVERS
from tests.support.net import free_port
from tests.support.oidc import gateway_auth_config, oidc_provider_process
from tests.support.process import gateway_process_on
from tests.support.relay import relay_to
from tests.support.sign_in import register, sign_in

pytestmark = pytest.mark.e2e

PROBE = {"transportType": "stdio", "command": sys.executable, "args": [str(SERVERS / "probe_server.py")]}
METRICS_TOKEN = "signed-in-metrics-token-0123456789"
TOKEN_REQUESTS_PER_MINUTE = 4


@dataclass
class Gateway:
    url: str
    process: ServerProcess


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with oidc_provider_process(redirect_uris=[f"{url}/oauth/callback"]) as oidc:
        auth = gateway_auth_config(url, oidc)
        directory = tmp_path_factory.mktemp("operations-signed-in")
        with gateway_process_on(
            port,
            directory,
            {"probe": PROBE},
            env={**os.environ, "METRICS_TOKEN": METRICS_TOKEN},
            auth=auth,
            metrics={"token": {"$env": "METRICS_TOKEN"}},
            rateLimits={"token": {"requests": TOKEN_REQUESTS_PER_MINUTE, "per": "1m"}},
        ) as process:
            yield Gateway(url, process)


def sample(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{series} is not in:\n{text}"
    return float(match.group(1))


async def test_grants_and_token_refusals_are_counted(gateway: Gateway) -> None:
    registered = await register(gateway.url)
    assert registered.status_code == 201
    client_id = registered.json()["client_id"]
    tokens = await sign_in(gateway.url, client_id, f"{gateway.url}/probe/mcp")
    async with httpx2.AsyncClient(base_url=gateway.url, timeout=30.0) as http:
        refreshed = await http.post(
            "/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": client_id,
            },
        )
        assert refreshed.status_code == 200
        statuses = [
            (
                await http.post("/token", data={"grant_type": "refresh_token", "refresh_token": "nope"})
            ).status_code
            for _ in range(TOKEN_REQUESTS_PER_MINUTE)
        ]
        assert 429 in statuses
        scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200
    text = scraped.text
    assert sample(text, 'mcp_front_token_grants_total{grant_type="authorization_code"}') == 1
    assert sample(text, 'mcp_front_token_grants_total{grant_type="refresh_token"}') == 1
    assert sample(text, 'mcp_front_rate_limited_total{limit="token"}') == statuses.count(429)
    assert "mcp_front_store_errors_total{" not in text
    for secret in (tokens["access_token"], tokens["refresh_token"], refreshed.json()["access_token"]):
        assert secret not in text


async def test_ready_asks_the_store(gateway: Gateway) -> None:
    async with httpx2.AsyncClient(base_url=gateway.url, timeout=30.0) as http:
        responses = [await http.get("/ready") for _ in range(20)]
    assert {response.status_code for response in responses} == {200}
    assert responses[0].json() == {"status": "ready"}


REDIS_URL = os.environ.get("MCP_FRONT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def test_ready_follows_a_redis_outage_and_metrics_count_its_errors(tmp_path: Path) -> None:
    """Redis behind a relay that is cut and restored: /ready goes 503 and back to 200, and
    the failed store operations are counted; no address of the store is ever shown."""
    target = urlsplit(REDIS_URL)
    client = Redis(host=target.hostname or "127.0.0.1", port=target.port or 6379)
    try:
        await client.ping()
    except OSError as error:
        if os.environ.get("CI") == "true":
            await client.aclose()
            pytest.fail(f"Redis is not reachable ({error})", pytrace=False)
        await client.aclose()
        pytest.skip(f"Redis is not reachable ({error})")
    prefix = f"mcp-front-e2e-{secrets.token_hex(4)}:"
    try:
        await gateway_on_a_cut_redis(tmp_path, target.hostname or "127.0.0.1", target.port or 6379, prefix)
    finally:
        async for key in client.scan_iter(match=f"{prefix}*", count=500):
            await client.delete(key)
        await client.aclose()


async def gateway_on_a_cut_redis(tmp_path: Path, host: str, redis_port: int, prefix: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        relay_to(host, redis_port) as relay,
        oidc_provider_process(redirect_uris=[f"{url}/oauth/callback"]) as oidc,
    ):
        # A prefix of the test's own: other runs on the same Redis are left alone.
        storage = {"kind": "redis", "url": f"redis://127.0.0.1:{relay.port}/0", "prefix": prefix}
        auth = {**gateway_auth_config(url, oidc), "storage": storage}
        with gateway_process_on(
            port,
            tmp_path,
            {"probe": PROBE},
            env={**os.environ, "METRICS_TOKEN": METRICS_TOKEN},
            auth=auth,
            metrics={"token": {"$env": "METRICS_TOKEN"}},
        ):
            async with httpx2.AsyncClient(base_url=url, timeout=30.0) as http:
                assert (await http.get("/ready")).status_code == 200
                relay.cut()
                down = await eventually_status(http, 503)
                assert down.json() == {"status": "unavailable", "store": "unreachable"}
                assert str(relay.port) not in down.text
                scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
                assert sample(scraped.text, 'mcp_front_store_errors_total{store="Redis"}') >= 1
                assert str(relay.port) not in scraped.text
                relay.restore()
                up = await eventually_status(http, 200)
                assert up.json() == {"status": "ready"}


async def eventually_status(http: httpx2.AsyncClient, status: int, within: float = 30.0) -> httpx2.Response:
    """The first /ready answer with `status`, asked every 0.2 s (past the one-second cache)."""
    with anyio.fail_after(within):
        while True:
            response = await http.get("/ready")
            if response.status_code == status:
                return response
            await anyio.sleep(0.2)

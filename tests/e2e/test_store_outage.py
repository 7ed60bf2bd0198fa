"""`mcp-front serve` while its Redis or PostgreSQL goes away and comes back (a TCP relay in
front of the real server, cut and restored): what needs the store gets a 503 it can retry,
MCP sessions carry on, nothing crashes, and once the store is back the grants made before
are all there."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2
import pytest

from tests.e2e.test_shared_stores import storage  # noqa: F401 - a fixture
from tests.support.clients import connect, text_of
from tests.support.gateway import stdio_service
from tests.support.oidc import OIDCServer, gateway_auth_config
from tests.support.process import gateway_process_on
from tests.support.redis_server import private_redis
from tests.support.relay import relay_to
from tests.support.sign_in import register, sign_in

pytestmark = pytest.mark.e2e

RECOVERY = 60.0
"""Seconds the gateway may take to use the store again on a busy machine."""


async def refreshed_once_back(http: httpx2.AsyncClient, url: str, form: dict[str, str]) -> httpx2.Response:
    """The refresh grant's answer once the store is back (503 until then)."""
    deadline = time.monotonic() + RECOVERY
    while True:
        refreshed = await http.post(url, data=form)
        if refreshed.status_code != 503 or time.monotonic() > deadline:
            return refreshed
        await anyio.sleep(0.5)


def refresh_form(tokens: dict[str, Any], client_id: str, resource: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": client_id,
        "resource": resource,
    }


async def test_a_store_outage_is_a_503_and_the_gateway_recovers_with_every_grant(
    storage: dict[str, Any],  # noqa: F811 - the fixture imported above
    port: int,
    oidc: OIDCServer,
    tmp_path: Path,
) -> None:
    real = urlsplit(storage["url"])
    assert real.hostname is not None
    assert real.port is not None
    with relay_to(real.hostname, real.port) as relay:
        relayed = urlunsplit(real._replace(netloc=real.netloc.replace(f":{real.port}", f":{relay.port}")))
        auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc, storage={**storage, "url": relayed})
        with gateway_process_on(port, tmp_path, {"probe": stdio_service()}, auth=auth) as gateway:
            resource = f"{gateway.url}/probe"
            client = (await register(gateway.url)).json()
            tokens = await sign_in(gateway.url, client["client_id"], resource)
            async with (
                connect(f"{gateway.url}/probe/mcp", token=tokens["access_token"]) as mcp,
                httpx2.AsyncClient(timeout=30) as http,
            ):
                assert text_of(await mcp.call_tool("echo", {"text": "before"})) == "before"
                relay.cut()

                form = refresh_form(tokens, client["client_id"], resource)
                refused = await http.post(f"{gateway.url}/token", data=form)
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"] == "temporarily_unavailable"
                assert int(refused.headers["retry-after"]) > 0
                assert relayed not in refused.text
                assert str(relay.port) not in refused.text
                registration = await register(gateway.url)
                assert registration.status_code == 503
                assert (await http.get(f"{gateway.url}/health")).status_code == 200

                # The session needs no store: it carries on, and so does a new one.
                assert text_of(await mcp.call_tool("echo", {"text": "during"})) == "during"
                async with connect(f"{gateway.url}/probe/mcp", token=tokens["access_token"]) as again:
                    assert text_of(await again.call_tool("echo", {"text": "new"})) == "new"

                relay.restore()
                refreshed = await refreshed_once_back(http, f"{gateway.url}/token", form)
                assert refreshed.status_code == 200, refreshed.text
                assert text_of(await mcp.call_tool("echo", {"text": "after"})) == "after"
            renewed = refreshed.json()
            async with connect(f"{gateway.url}/probe/mcp", token=renewed["access_token"]) as mcp:
                assert text_of(await mcp.call_tool("echo", {"text": "renewed"})) == "renewed"
            assert (await register(gateway.url)).status_code == 201
        log = (tmp_path / "gateway.log").read_text()
        assert "Traceback" not in log, log[-3000:]
        assert "store is unreachable" in log


async def test_redis_stopped_and_started_again_loses_no_grant(
    port: int, oidc: OIDCServer, tmp_path: Path
) -> None:
    """The store's server itself stops (its data on disk) and starts again on its port."""
    (tmp_path / "redis").mkdir()
    with private_redis(tmp_path / "redis") as redis_server:
        storage = {"kind": "redis", "url": redis_server.url}
        auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc, storage=storage)
        with gateway_process_on(port, tmp_path, {"probe": stdio_service()}, auth=auth) as gateway:
            resource = f"{gateway.url}/probe"
            client = (await register(gateway.url)).json()
            tokens = await sign_in(gateway.url, client["client_id"], resource)
            async with (
                connect(f"{gateway.url}/probe/mcp", token=tokens["access_token"]) as mcp,
                httpx2.AsyncClient(timeout=30) as http,
            ):
                redis_server.stop()
                assert text_of(await mcp.call_tool("echo", {"text": "during"})) == "during"
                form = refresh_form(tokens, client["client_id"], resource)
                refused = await http.post(f"{gateway.url}/token", data=form)
                assert refused.status_code == 503
                redis_server.start()
                refreshed = await refreshed_once_back(http, f"{gateway.url}/token", form)
                assert refreshed.status_code == 200, refreshed.text
                assert text_of(await mcp.call_tool("echo", {"text": "after"})) == "after"

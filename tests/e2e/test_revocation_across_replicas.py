"""Two `mcp-front serve` replicas on one Redis or PostgreSQL: a grant revoked on one is
refused by the other within a second, with no store read on the way of a request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from tests.e2e.test_shared_stores import storage  # noqa: F401 - a fixture
from tests.support.clients import connect, text_of
from tests.support.gateway import stdio_service
from tests.support.net import free_port
from tests.support.oidc import OIDCServer, gateway_auth_config
from tests.support.process import gateway_process_on
from tests.support.sign_in import register, sign_in

pytestmark = pytest.mark.e2e

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "revocation-probe", "version": "1"},
    },
}


async def test_a_grant_revoked_on_one_replica_is_refused_by_the_other_within_a_second(
    storage: dict[str, Any],  # noqa: F811 - the fixture imported above
    port: int,
    oidc: OIDCServer,
    tmp_path: Path,
) -> None:
    base = f"http://127.0.0.1:{port}"
    other_port = free_port()
    auth = gateway_auth_config(base, oidc, storage=storage)
    services = {"probe": stdio_service()}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        gateway_process_on(port, tmp_path / "a", services, auth=auth) as first,
        gateway_process_on(other_port, tmp_path / "b", services, auth=auth, baseURL=base),
    ):
        second_url = f"http://127.0.0.1:{other_port}"
        client = (await register(first.url)).json()
        tokens = await sign_in(first.url, client["client_id"], f"{base}/probe")
        headers = {
            "Authorization": f"Bearer {tokens['access_token']}",
            "Accept": "application/json, text/event-stream",
        }
        async with connect(f"{second_url}/probe/mcp", token=tokens["access_token"]) as mcp:
            assert text_of(await mcp.call_tool("echo", {"text": "before"})) == "before"
        async with httpx2.AsyncClient(timeout=30) as http:
            revoked = await http.post(
                f"{first.url}/revoke",
                data={"token": tokens["refresh_token"], "client_id": client["client_id"]},
            )
            assert revoked.status_code == 200
            revoked_at = time.monotonic()
            while True:
                answer = await http.post(f"{second_url}/probe/mcp", json=INITIALIZE, headers=headers)
                if answer.status_code == 401:
                    break
                assert answer.status_code == 200
                assert time.monotonic() - revoked_at < 1.0, "the other replica still accepts the token"
                await anyio.sleep(0.02)
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]

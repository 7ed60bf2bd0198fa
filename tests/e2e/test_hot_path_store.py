"""The hot path of an MCP request makes no store round trip: once a session is open and
its token verified, `tools/call` after `tools/call` leaves the store untouched."""

from __future__ import annotations

import pytest

from mcp_front.storage import MemoryStore
from tests.support.clients import connect, text_of
from tests.support.counting_store import CountingStore
from tests.support.gateway import running_gateway, stdio_service
from tests.support.oidc import OIDCServer, gateway_auth_config
from tests.support.sign_in import register, sign_in

pytestmark = pytest.mark.e2e


async def test_tool_calls_make_no_store_round_trip(port: int, oidc: OIDCServer) -> None:
    store = CountingStore(MemoryStore())
    auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc)
    limits = {"failedAuthentication": {"requests": 5, "per": "1m"}}
    async with running_gateway(
        {"probe": stdio_service()}, proxy={"auth": auth, "rateLimits": limits}, port=port, store=store
    ) as gw:
        client = (await register(gw.url)).json()
        tokens = await sign_in(gw.url, client["client_id"], f"{gw.url}/probe")
        async with connect(f"{gw.url}/probe/mcp", token=tokens["access_token"]) as mcp:
            assert text_of(await mcp.call_tool("echo", {"text": "warm"})) == "warm"
            before = dict(store.calls)
            for n in range(20):
                assert text_of(await mcp.call_tool("echo", {"text": str(n)})) == str(n)
            assert dict(store.calls) == before
        # A new session with the same token needs none either.
        async with connect(f"{gw.url}/probe/mcp", token=tokens["access_token"]) as mcp:
            assert text_of(await mcp.call_tool("echo", {"text": "again"})) == "again"
        assert dict(store.calls) == before

"""What reaches an HTTP backend: its configured headers, never the client's credentials."""

from __future__ import annotations

from typing import Literal

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.clients import text_of
from tests.support.gateway import bearer, running_gateway
from tests.support.recorded_backend import running_backend

pytestmark = pytest.mark.e2e

CLIENT_TOKEN = "client-t0k3n-never-forwarded"
CLIENT_COOKIE = "session=client-cookie-never-forwarded"


@pytest.mark.parametrize("kind", ["streamable-http", "sse"])
async def test_only_configured_headers_reach_the_backend(
    kind: Literal["streamable-http", "sse"], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKEND_KEY", "backend-key-from-env")
    service = {
        "transportType": kind,
        "serviceAuths": [bearer(CLIENT_TOKEN)],
        "headers": {"X-Api-Key": {"$env": "BACKEND_KEY"}, "X-Service": "probe"},
    }
    async with running_backend(kind) as backend:
        async with running_gateway({"probe": {**service, "url": backend.url}}) as gw:
            headers = {"Authorization": f"Bearer {CLIENT_TOKEN}", "Cookie": CLIENT_COOKIE}
            async with (
                httpx2.AsyncClient(headers=headers) as http,
                Client(streamable_http_client(gw.service_url("probe"), http_client=http)) as client,
            ):
                assert text_of(await client.call_tool("echo", {"text": "hi"})) == "hi"
    assert backend.requests
    for request in backend.requests:
        assert request["x-api-key"] == "backend-key-from-env"
        assert request["x-service"] == "probe"
        assert "authorization" not in request
        assert "cookie" not in request
        assert CLIENT_TOKEN not in str(request)
        assert "client-cookie" not in str(request)

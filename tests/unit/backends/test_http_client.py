"""The HTTP client backends share keeps no cookies and follows no redirects."""

from __future__ import annotations

import httpx2

from mcp_front.backends.http_client import backend_client


async def test_a_cookie_one_session_received_is_never_sent_again() -> None:
    seen: list[str | None] = []

    def backend(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers.get("cookie"))
        return httpx2.Response(200, headers={"Set-Cookie": "affinity=alice; Path=/"}, json={})

    async with backend_client(timeout=httpx2.Timeout(5), transport=httpx2.MockTransport(backend)) as client:
        await client.get("http://backend.internal/mcp")
        await client.get("http://backend.internal/mcp")
    assert seen == [None, None]


async def test_redirects_are_not_followed() -> None:
    def backend(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(307, headers={"Location": "http://elsewhere.example/steal"})

    async with backend_client(timeout=httpx2.Timeout(5), transport=httpx2.MockTransport(backend)) as client:
        response = await client.post("http://backend.internal/mcp", json={})
    assert response.status_code == 307
    assert response.url.host == "backend.internal"

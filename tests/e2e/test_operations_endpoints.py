"""A running gateway's `/ready` and `/metrics`: what a balancer and a scraper see."""

from __future__ import annotations

import re

import httpx2
import pytest

from tests.support.clients import connect, text_of
from tests.support.gateway import bearer, running_gateway, stdio_service

pytestmark = pytest.mark.e2e

TOKEN = "operations-test-token"
SCRAPER = "scraper-token-0123456789"


def sample(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in the metrics:\n{text}"
    return float(found.group(1))


async def test_metrics_follow_the_gateway_and_only_the_scraper_reads_them() -> None:
    services = {"probe": stdio_service(serviceAuths=[bearer(TOKEN)])}
    proxy = {"metrics": {"token": SCRAPER}}
    async with running_gateway(services, proxy=proxy) as gw, httpx2.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{gw.url}/ready")).json() == {"status": "ready"}
        assert (await http.get(f"{gw.url}/metrics")).status_code == 401
        async with connect(f"{gw.url}/probe/mcp", token=TOKEN) as mcp:
            assert text_of(await mcp.call_tool("echo", {"text": "counted"})) == "counted"
            scraped = await http.get(f"{gw.url}/metrics", headers={"Authorization": f"Bearer {SCRAPER}"})
            assert scraped.status_code == 200
            text = scraped.text
            assert sample(text, "mcp_front_sessions") >= 1
            assert sample(text, "mcp_front_stdio_processes") >= 1
            assert sample(text, 'mcp_front_requests_total{service="probe",endpoint="mcp",status="200"}') >= 2
            bucket = 'mcp_front_request_duration_seconds_bucket{service="probe",endpoint="mcp",le="+Inf"}'
            assert bucket in text
            assert TOKEN not in text
            assert SCRAPER not in text


async def test_no_metrics_without_a_configured_token() -> None:
    async with running_gateway({"probe": stdio_service()}) as gw, httpx2.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{gw.url}/metrics")).status_code == 404
        assert (await http.get(f"{gw.url}/health")).json() == {"status": "ok"}


async def test_no_request_adds_a_series_and_wrong_credentials_past_the_limit_are_counted() -> None:
    services = {"probe": stdio_service(serviceAuths=[bearer(TOKEN)])}
    proxy = {
        "metrics": {"token": SCRAPER},
        "rateLimits": {"failedAuthentication": {"requests": 1, "per": "1m"}},
    }
    async with running_gateway(services, proxy=proxy) as gw, httpx2.AsyncClient(timeout=30) as http:
        wrong = {"Authorization": "Bearer wrong"}
        statuses = [
            (await http.post(f"{gw.url}/probe/mcp", json={}, headers=wrong)).status_code for _ in range(3)
        ]
        assert 429 in statuses
        # A path that decodes to a quote, a brace and a newline, a long one, a deeper one.
        for path in ("/probe/x%22%7D%201%0Aforged%7Ba%3D%22", "/probe/" + "a" * 300, "/probe/mcp/extra"):
            await http.post(f"{gw.url}{path}", json={}, headers=wrong)
        text = (await http.get(f"{gw.url}/metrics", headers={"Authorization": f"Bearer {SCRAPER}"})).text
    assert sample(text, 'mcp_front_rate_limited_total{limit="failedAuthentication"}') >= statuses.count(429)
    assert "forged" not in text
    assert "a" * 300 not in text
    assert "extra" not in text
    endpoints = set(re.findall(r'endpoint="([^"]*)"', text))
    assert endpoints <= {"mcp", "sse", "message", "other"}

"""`/ready`, `/metrics` and what the metrics registry writes."""

from __future__ import annotations

import re

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from mcp_front.config import ConfigError, load_config
from mcp_front.metrics import Registry
from mcp_front.operations import MetricsEndpoint, Readiness, ServiceMetrics
from mcp_front.storage import MemoryStore, StoreUnavailable
from tests.support.counting_store import CountingStore


class Unreachable(CountingStore):
    async def get(self, namespace: str, key: str) -> bytes | None:
        self.calls["get"] += 1
        raise StoreUnavailable("Redis is unreachable: ConnectionError")


def client(app: Starlette) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://gw")


async def test_ready_says_whether_the_store_answers_asking_it_once_a_second() -> None:
    up, down = CountingStore(MemoryStore()), Unreachable(MemoryStore())
    app = Starlette(routes=[Route("/up", Readiness(up).endpoint), Route("/down", Readiness(down).endpoint)])
    async with client(app) as http:
        for _ in range(20):
            answer = await http.get("/up")
            assert answer.status_code == 200
            assert answer.json() == {"status": "ready"}
        refused = await http.get("/down")
        assert refused.status_code == 503
        assert refused.json() == {"status": "unavailable", "store": "unreachable"}
        assert "Redis" not in refused.text
    assert up.calls["get"] == 1


async def test_metrics_need_the_token_and_speak_the_prometheus_format() -> None:
    registry = Registry()
    requests = registry.counter("demo_requests_total", "Requests.", ("service",))
    requests.inc('we"ird\nname')
    latency = registry.histogram("demo_seconds", "Latency.", ("service",))
    for value in (0.0005, 0.02, 7.0, 60.0):
        latency.observe(value, "probe")
    registry.gauge("demo_sessions", "Sessions.", lambda: {(): 3.0})
    app = Starlette(routes=[Route("/metrics", MetricsEndpoint("s" * 20, registry).endpoint)])
    async with client(app) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer " + "t" * 20})
        assert wrong.status_code == 401
        assert "s" * 20 not in wrong.text
        answer = await http.get("/metrics", headers={"Authorization": "Bearer " + "s" * 20})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = answer.text
    assert "# TYPE demo_requests_total counter" in text
    assert 'demo_requests_total{service="we\\"ird\\nname"} 1' in text
    assert 'demo_seconds_bucket{service="probe",le="0.001"} 1' in text
    assert 'demo_seconds_bucket{service="probe",le="0.025"} 2' in text
    assert 'demo_seconds_bucket{service="probe",le="+Inf"} 4' in text
    assert 'demo_seconds_count{service="probe"} 4' in text
    assert "demo_sessions 3" in text
    assert re.search(r"^mcp_front_start_time_seconds \d", text, re.MULTILINE)


async def test_service_requests_are_counted_by_endpoint_and_status() -> None:
    from mcp_front.metrics import REQUESTS

    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/mcp", ok, methods=["POST"]), Route("/sse", ok)])
    app = Starlette(routes=[Mount("/counted", app=ServiceMetrics(inner, "counted"))])
    before = REQUESTS.value("counted", "mcp", "200")
    async with client(app) as http:
        await http.post("/counted/mcp")
        await http.post("/counted/mcp")
        await http.get("/counted/../../etc/passwd-like-path")
    assert REQUESTS.value("counted", "mcp", "200") == before + 2


class BrokenStore(MemoryStore):
    """A store failing with something other than `StoreUnavailable` (a full disk, a bug)."""

    async def get(self, namespace: str, key: str) -> bytes | None:
        raise OSError("disk full")


async def test_a_store_failing_in_any_way_is_not_ready_rather_than_an_error() -> None:
    app = Starlette(routes=[Route("/ready", Readiness(BrokenStore()).endpoint)])
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as http:
        response = await http.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "store": "unreachable"}
    assert "disk" not in response.text


async def test_the_metrics_token_is_compared_whatever_the_length_or_bytes_sent() -> None:
    registry = Registry()
    app = Starlette(routes=[Route("/metrics", MetricsEndpoint("t" * 20, registry).endpoint)])
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as http:
        for sent in ("", "Bearer ", "Bearer " + "t" * 19, "Bearer " + "t" * 21, "Bearer " + "t" * 5000):
            assert (await http.get("/metrics", headers={"Authorization": sent})).status_code == 401
        assert (
            await http.get("/metrics", headers={"Authorization": "Bearer " + "t" * 20})
        ).status_code == 200


def test_ready_is_a_reserved_service_name() -> None:
    with pytest.raises(ConfigError, match=r"mcpServers\.ready"):
        load_config({"mcpServers": {"ready": {"transportType": "stdio", "command": "x"}}})

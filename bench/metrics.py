"""What recording metrics costs a request: the same gateway app as `create_app` builds it
(each service behind `ServiceMetrics`) and with the services' apps unwrapped (nothing
recorded), driven in process (no sockets, so the difference is not lost in network noise).

Three cases, each run with metrics off and on in alternating rounds so both see the same
machine state:

- `record`: what `ServiceMetrics` records for one request (a counter and a histogram),
  alone, against an empty call;
- `service 401`: `POST /<service>/mcp` with a wrong static credential through the whole app
  (access log, CORS, routing, guard): the cheapest service request, so the largest share;
- `health`: `GET /health`, which records nothing and crosses the same middleware.

    .venv/bin/python -m bench.metrics [--rounds N] [--requests N]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.routing import Mount

from mcp_front.app import create_app
from mcp_front.metrics import Registry
from mcp_front.operations import ServiceMetrics

TOKEN = "bench-static-token"
METRICS_TOKEN = "bench-metrics-token-0123456789"


def _config() -> dict[str, Any]:
    proxy: dict[str, Any] = {
        "baseURL": "http://127.0.0.1:9",
        "rateLimits": {"failedAuthentication": None},
        "metrics": {"token": METRICS_TOKEN},
    }
    tool = {"name": "echo", "description": "echo", "inputSchema": {"type": "object"}, "command": "true"}
    service = {
        "transportType": "inline",
        "inline": {"tools": [tool]},
        "serviceAuths": [{"type": "bearer", "tokens": [TOKEN]}],
    }
    return {"proxy": proxy, "mcpServers": {"svc": service}}


def _request(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:9"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 9),
    }


async def _call(app: Any, scope: dict[str, Any], body: bytes = b"") -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope), receive, send)
    return status


async def _time(requests: int, one: Callable[[], Awaitable[object]]) -> float:
    """Mean microseconds per call over `requests` calls."""
    started = time.perf_counter_ns()
    for _ in range(requests):
        await one()
    return (time.perf_counter_ns() - started) / requests / 1000


async def run(rounds: int, count: int) -> dict[str, dict[str, list[float]]]:
    apps = {label: create_app(_config()) for label in ("off", "on")}
    for route in apps["off"].router.routes:
        if isinstance(route, Mount) and isinstance(route.app, ServiceMetrics):
            route.app = route.app.app  # the service's guarded app, nothing recorded
    wrong = [(b"authorization", b"Bearer wrong"), (b"content-type", b"application/json")]
    service = _request("POST", "/svc/mcp", wrong)
    health = _request("GET", "/health", [])
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    registry = Registry()
    requests = registry.counter("requests_total", "x", ("service", "endpoint", "status"))
    seconds = registry.histogram("request_duration_seconds", "x", ("service", "endpoint"))

    async def record() -> None:
        seconds.observe(0.001, "svc", "mcp")
        requests.inc("svc", "mcp", "401")

    async def nothing() -> None:
        return None

    results: dict[str, dict[str, list[float]]] = {
        case: {"off": [], "on": []} for case in ("record", "service 401", "health")
    }
    for app in apps.values():  # warm up both: imports, caches, first allocations
        assert await _call(app, service, body) == 401
        assert await _call(app, health) == 200
    for _ in range(rounds):
        for label, app in apps.items():
            results["record"][label].append(await _time(count, record if label == "on" else nothing))
            results["service 401"][label].append(
                await _time(count, lambda app=app: _call(app, service, body))  # type: ignore[misc]
            )
            results["health"][label].append(await _time(count, lambda app=app: _call(app, health)))  # type: ignore[misc]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the access log is the same on both sides; keep it off
    results = anyio.run(run, args.rounds, args.requests)
    print(f"{args.rounds} alternating rounds of {args.requests} calls; median of the rounds' means, µs/call")
    print(f"{'case':<14}{'metrics off':>13}{'metrics on':>13}{'difference':>13}")
    for case, sides in results.items():
        off, on = statistics.median(sides["off"]), statistics.median(sides["on"])
        print(f"{case:<14}{off:>13.2f}{on:>13.2f}{on - off:>+13.2f}")


if __name__ == "__main__":
    main()

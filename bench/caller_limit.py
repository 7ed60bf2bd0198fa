"""What the per-caller limit on MCP requests (`proxy.rateLimits.mcpRequests`) costs each
request, in process, side by side in one run.

`CallerRateLimit` (the middleware behind every service's guard) around an app that answers
at once, for:

- no limit: the app alone;
- the in-memory limit (`MemoryRateLimiter`), what one replica on memory or SQLite uses;
- the leased shared limit (`LeasedRateLimiter`) on Redis, what replicas on a shared store use;
- for contrast, the shared bucket asked on every request (`StoreRateLimiter`).

Two loads: one caller under a limit it never reaches (1 000 000 a minute), and 1000 callers
taking turns under the default 600 a minute (each lease small, many of them lapsing).
Store round trips are counted per request. Needs Redis at `MCP_FRONT_BENCH_REDIS_URL`
(default redis://127.0.0.1:6379).

Run: `python -m bench.caller_limit` (about a minute) or `python -m bench.caller_limit --quick`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from redis.asyncio import Redis
from starlette.types import Receive, Scope, Send

from bench.measure import percentile
from bench.runner import RESULTS_DIR
from bench.stores import REDIS
from mcp_front.auth.principal import Principal
from mcp_front.rate_limit import (
    LeasedRateLimiter,
    MemoryRateLimiter,
    RateLimit,
    RateLimiter,
    StoreRateLimiter,
)
from mcp_front.storage.redis import RedisStore
from mcp_front.transports.request_limits import CallerRateLimit

ROUNDS = 5


class CountedRedisStore(RedisStore):
    """A `RedisStore` counting the round trips a limiter makes."""

    round_trips = 0

    async def get(self, namespace: str, key: str) -> bytes | None:
        self.round_trips += 1
        return await super().get(namespace, key)

    async def compare_and_set(
        self, namespace: str, key: str, expected: bytes | None, value: bytes, *, ttl: timedelta | None = None
    ) -> bool:
        self.round_trips += 1
        return await super().compare_and_set(namespace, key, expected, value, ttl=ttl)


@dataclass(slots=True)
class Row:
    load: str
    case: str
    calls: int
    p50_us: float
    p99_us: float
    refused: int
    round_trips_per_request: float


@dataclass(slots=True)
class Report:
    started: str
    quick: bool
    rows: list[Row] = field(default_factory=list)


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _scope(principal: Principal) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/probe/mcp",
        "headers": [],
        "client": ("203.0.113.7", 1234),
        "user": principal,
    }


def _principal(n: int) -> Principal:
    return Principal(subject=f"user-{n}", email=f"user-{n}@example.com")


async def _measure(app: Any, scopes: list[dict[str, Any]], samples: list[float]) -> int:
    refused = 0
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    for scope in scopes:
        started = time.perf_counter_ns()
        await app(scope, receive, send)
        samples.append((time.perf_counter_ns() - started) / 1000)
        refused += status == 429
    return refused


async def run(calls: int, report: Report) -> None:
    client = Redis.from_url(REDIS)
    await client.ping()
    loads = {
        "one caller, 1 000 000 a minute": (RateLimit(1_000_000, timedelta(minutes=1)), 1),
        "1000 callers in turn, 600 a minute each": (RateLimit(600, timedelta(minutes=1)), 1000),
    }
    try:
        for load, (limit, callers) in loads.items():
            principals = [_principal(n) for n in range(callers)]
            scopes = [_scope(principals[n % callers]) for n in range(calls // ROUNDS)]
            leased_store, per_request_store = (
                CountedRedisStore(client, prefix=f"mcp-front-bench-{secrets.token_hex(6)}:") for _ in range(2)
            )

            def limited(limiter: RateLimiter, limit: RateLimit = limit) -> Any:
                return CallerRateLimit(_answer, service="probe", limiter=limiter, limit=limit)

            cases: dict[str, Any] = {
                "no limit": _answer,
                "in-memory limit": limited(MemoryRateLimiter()),
                "leased shared limit (Redis)": limited(LeasedRateLimiter(leased_store)),
                "shared bucket per request (Redis)": limited(StoreRateLimiter(per_request_store)),
            }
            counted = {
                "leased shared limit (Redis)": leased_store,
                "shared bucket per request (Redis)": per_request_store,
            }
            samples: dict[str, list[float]] = {case: [] for case in cases}
            refused = dict.fromkeys(cases, 0)
            for _round in range(ROUNDS):
                for case, app in cases.items():
                    refused[case] += await _measure(app, scopes, samples[case])
            for case, values in samples.items():
                values.sort()
                trips = counted[case].round_trips / len(values) if case in counted else 0.0
                p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
                report.rows.append(Row(load, case, len(values), p50, p99, refused[case], trips))
    finally:
        await client.aclose()


def print_report(report: Report) -> None:
    print("| load | case | calls | p50 µs | p99 µs | refused | store round trips per request |")
    print("|---|---|--:|--:|--:|--:|--:|")
    for row in report.rows:
        print(
            f"| {row.load} | {row.case} | {row.calls} | {row.p50_us:.2f} | {row.p99_us:.2f} "
            f"| {row.refused} | {row.round_trips_per_request:.4f} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.caller_limit", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args(argv)
    report = Report(started=datetime.now(UTC).isoformat(timespec="seconds"), quick=args.quick)
    anyio.run(run, 10_000 if args.quick else 100_000, report)
    print_report(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    output = RESULTS_DIR / f"caller-limit-{report.started.replace(':', '')}.json"
    output.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(f"\nRaw results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

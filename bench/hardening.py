"""What the hardening costs and what it saves, in one run.

1. `/health` latency of a real `mcp-front serve`, idle and while four clients send wrong
   Basic credentials to one of its services as fast as they can: with the default limits,
   with the failed-authentication limit off (the credential check alone), and for every
   `--gateway-venv` install (an earlier commit, say) in the same rounds.
2. The rate limiter's cost on `/token`, in process: the limited endpoint against the same
   endpoint without the limit, over one address and over 100 000 addresses.

Run: `python -m bench.hardening` (about 2 minutes) or `python -m bench.hardening --quick`.
Traffic stays on 127.0.0.1; every loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from bench import targets
from bench.measure import percentile
from bench.processes import ProcessSupervisor, free_port
from bench.runner import RESULTS_DIR
from mcp_front.auth.rate_limits import rate_limited
from mcp_front.rate_limit import MemoryRateLimiter, RateLimit

FLOODERS = 4
WRONG = "Basic " + base64.b64encode(b"ci:wrong-password").decode()


@dataclass(frozen=True, slots=True)
class Settings:
    health_requests: int
    rounds: int
    micro_calls: int
    time_limit: float
    flood_seconds: float
    """How long the flooding clients send; /health is timed while they do."""

    @classmethod
    def full(cls) -> Settings:
        return cls(health_requests=1000, rounds=3, micro_calls=60_000, time_limit=60.0, flood_seconds=12.0)

    @classmethod
    def quick(cls) -> Settings:
        return cls(health_requests=200, rounds=1, micro_calls=10_000, time_limit=20.0, flood_seconds=6.0)


@dataclass(slots=True)
class HealthRow:
    target: str
    phase: str
    requests: int
    p50_ms: float
    p99_ms: float
    flood_per_second: float = 0.0
    flood_statuses: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class MicroRow:
    case: str
    calls: int
    p50_us: float
    p99_us: float


@dataclass(slots=True)
class Report:
    started: str
    quick: bool
    health: list[HealthRow] = field(default_factory=list)
    micro: list[MicroRow] = field(default_factory=list)


# -- a keep-alive HTTP/1.1 client that does as little as possible ---------------------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, head: bytes, body: bytes = b"") -> int:
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def health_head(port: int) -> bytes:
    return f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def wrong_credentials_request(port: int) -> tuple[bytes, bytes]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    head = (
        f"POST /demo/mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {WRONG}\r\n"
        f"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head, body


async def time_health(port: int, requests: int, deadline: float, *, every: float = 0.0) -> list[float]:
    """Time up to `requests` GETs of /health, one every `every` seconds at most, until `deadline`."""
    connection = await Connection.open(port)
    head = health_head(port)
    seconds = []
    try:
        for _ in range(requests):
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            assert await connection.request(head) == 200
            took = time.perf_counter() - started
            seconds.append(took)
            if every > took:
                await anyio.sleep(every - took)
    finally:
        await connection.close()
    return seconds


async def flood(port: int, seconds: float) -> dict[str, int]:
    """Send wrong credentials on one connection for `seconds`, each once the last is answered."""
    head, body = wrong_credentials_request(port)
    connection = await Connection.open(port)
    print("ready", flush=True)
    statuses: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            status = str(await connection.request(head, body))
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        await connection.close()
    return statuses


def start_flooders(port: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """Each flooding client in a process of its own, so that neither they nor the client
    timing /health wait on each other's event loop."""
    return [
        subprocess.Popen(
            [sys.executable, "-m", "bench.hardening", "--flood", str(port), "--seconds", str(seconds)],
            stdout=subprocess.PIPE,
            cwd=targets.ROOT,
        )
        for _ in range(FLOODERS)
    ]


async def measure_target(name: str, port: int, settings: Settings) -> list[HealthRow]:
    rows = []
    deadline = time.monotonic() + settings.time_limit
    await time_health(port, 50, deadline)  # warm-up
    every = (settings.flood_seconds - 1) / settings.health_requests
    idle = sorted(await time_health(port, settings.health_requests, deadline, every=every))
    rows.append(_health_row(name, "idle", idle))
    flood_seconds = settings.flood_seconds
    flooders = start_flooders(port, flood_seconds)
    try:
        for flooder in flooders:
            assert flooder.stdout is not None
            await anyio.to_thread.run_sync(flooder.stdout.readline)  # "ready": sending from now on
        until = time.monotonic() + flood_seconds - 1
        every = (flood_seconds - 1) / settings.health_requests
        busy = sorted(await time_health(port, settings.health_requests, until, every=every))
    finally:
        outputs = [flooder.communicate(timeout=flood_seconds + 30)[0] for flooder in flooders]
    statuses: dict[str, int] = {}
    for output in outputs:
        for status, count in json.loads(output.splitlines()[-1]).items():
            statuses[status] = statuses.get(status, 0) + count
    row = _health_row(name, f"{FLOODERS} clients sending wrong Basic credentials", busy)
    row.flood_per_second = sum(statuses.values()) / flood_seconds
    row.flood_statuses = statuses
    rows.append(row)
    return rows


def _health_row(target: str, phase: str, seconds: list[float]) -> HealthRow:
    return HealthRow(
        target=target,
        phase=phase,
        requests=len(seconds),
        p50_ms=1000 * percentile(seconds, 0.5),
        p99_ms=1000 * percentile(seconds, 0.99),
    )


def gateway_config(port: int, *, failure_limit: bool | None) -> dict[str, Any]:
    """A gateway with a stdio service behind Basic credentials. `failure_limit` None writes no
    `rateLimits` key at all (installs older than the limits refuse it)."""
    proxy: dict[str, Any] = {"baseURL": f"http://127.0.0.1:{port}", "addr": f"127.0.0.1:{port}"}
    if failure_limit is not None:
        proxy["rateLimits"] = dict(targets.UNREACHED_LIMITS)
    if failure_limit is False:
        proxy["rateLimits"]["failedAuthentication"] = None
    return {
        "proxy": proxy,
        "mcpServers": {
            "demo": {
                "transportType": "stdio",
                "command": sys.executable,
                "args": [str(targets.DEMO_SERVER)],
                "serviceAuths": [{"type": "basic", "username": "ci", "password": "correct-password"}],
            }
        },
    }


async def health_rounds(settings: Settings, venvs: list[Path], report: Report, log_dir: Path) -> None:
    cases: list[tuple[str, list[str], bool | None]] = [
        ("this install, default limits", targets.gateway_command(), True),
        ("this install, failedAuthentication off", targets.gateway_command(), False),
        *((f"{venv}", targets.gateway_command(venv), None) for venv in venvs),
    ]
    supervisor = ProcessSupervisor(log_dir)
    try:
        for _ in range(settings.rounds):
            for name, command, limit in cases:
                port = free_port()
                path = log_dir / f"hardening-{port}.json"
                path.write_text(json.dumps(gateway_config(port, failure_limit=limit), indent=2))
                server = supervisor.start_server(
                    "mcp-front",
                    [*command, "serve", "--config", str(path), "--log-level", "warning"],
                    port=port,
                )
                try:
                    report.health += await measure_target(name, port, settings)
                finally:
                    supervisor.stop(server)
    finally:
        supervisor.close()


# -- the rate limiter, in process -------------------------------------------------------------


async def _ok(request: Request) -> Response:
    return Response(status_code=200)


def _scope(host: str) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/token", "headers": [], "client": (host, 1234)}


async def micro(settings: Settings, report: Report) -> None:
    limit = RateLimit(1_000_000_000, timedelta(minutes=1))  # never refuses: the cost of counting
    cases = {
        "endpoint without a limit": (_ok, ["203.0.113.7"]),
        "rate-limited endpoint, one address": (
            rate_limited(_ok, MemoryRateLimiter(), limit, "token"),
            ["203.0.113.7"],
        ),
        "rate-limited endpoint, 100 000 addresses": (
            rate_limited(_ok, MemoryRateLimiter(), limit, "token"),
            [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(100_000)],
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    deadline = time.monotonic() + settings.time_limit
    for _round in range(5):
        for name, (endpoint, hosts) in cases.items():
            requests = [Request(_scope(hosts[n % len(hosts)])) for n in range(settings.micro_calls // 5)]
            for request in requests:
                started = time.perf_counter_ns()
                await endpoint(request)
                samples[name].append((time.perf_counter_ns() - started) / 1000)
            if time.monotonic() > deadline:
                break
    for name, values in samples.items():
        values.sort()
        report.micro.append(MicroRow(name, len(values), percentile(values, 0.5), percentile(values, 0.99)))


def print_report(report: Report) -> None:
    print("### /health while wrong Basic credentials arrive\n")
    print("| target | phase | requests | p50 ms | p99 ms | flood req/s | flood answers |")
    print("|---|---|---:|---:|---:|---:|---|")
    for row in report.health:
        answers = ", ".join(f"{status}: {count}" for status, count in sorted(row.flood_statuses.items()))
        flood_rate = f"{row.flood_per_second:.0f}" if row.flood_per_second else "–"
        print(
            f"| {row.target} | {row.phase} | {row.requests} | {row.p50_ms:.3f} | {row.p99_ms:.3f} "
            f"| {flood_rate} | {answers or '–'} |"
        )
    print("\n### The rate limiter on /token, in process\n")
    print("| case | calls | p50 µs | p99 µs |")
    print("|---|---:|---:|---:|")
    for micro_row in report.micro:
        print(f"| {micro_row.case} | {micro_row.calls} | {micro_row.p50_us:.2f} | {micro_row.p99_us:.2f} |")
    base = next(m.p50_us for m in report.micro if m.case == "endpoint without a limit")
    for micro_row in report.micro[1:]:
        print(
            f"\n{micro_row.case}: the limit adds {micro_row.p50_us - base:.2f} µs at p50 (goal: under 20 µs)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hardening", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    targets.add_gateway_venv_option(parser)
    parser.add_argument("--flood", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.flood is not None:
        print(json.dumps(asyncio.run(flood(args.flood, args.seconds))))
        return 0
    settings = Settings.quick() if args.quick else Settings.full()
    report = Report(started=datetime.now(UTC).isoformat(timespec="seconds"), quick=args.quick)
    log_dir = RESULTS_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    anyio.run(micro, settings, report)
    anyio.run(health_rounds, settings, args.gateway_venv, report, log_dir)
    print_report(report)
    output = RESULTS_DIR / f"hardening-{report.started.replace(':', '')}.json"
    output.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(f"\nRaw results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

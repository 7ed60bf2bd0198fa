"""Benchmark: an aggregate's `tools/list` against its members', directly and through mcp-front.

    python -m bench.aggregate            # the full run (about 100 seconds on 2 cores)
    python -m bench.aggregate --quick    # a short smoke run (about 30 seconds)

The goal under test: an aggregate's `tools/list` over three members is no slower than
the slowest member plus 5 ms (p50). Three streamable-HTTP members, each an instance of
`bench.http_backend_server` with its own number of tools (5, 20 and 50 by default), one
of them slower (`tools/list` waits `--list-delay-ms`, 3 ms by default, before it
answers), and one `mcp-front serve` with a static bearer token and these services:

* the three members, each a `"transportType": "streamable-http"` service;
* `all`, an aggregate over them with `discovery.cacheTtl` of 1 µs (the shortest the
  configuration takes): every listing asks every member, which is what the goal is about;
* `all-cached`, the same aggregate with the default `cacheTtl` (1 minute): after the
  first listing each session answers from its cache.

Targets: each member directly, each member through mcp-front, and both aggregates through
mcp-front. Each target gets its sessions (one per worker) opened and initialized once,
before the first round, and reused for every round, so session opening is not measured;
the aggregate's members connect in the background of its `initialize`, and the warm-up
listings of the first round wait for them; later rounds start with a few untimed
listings per session. Every answer is checked to hold every tool
(an aggregate that left a member out would be fast and wrong). Clients, as in
`bench.http_backend`: the raw HTTP client (httpx2) at c=1 and c=10 and the single-write
socket client at c=1, the same for every target. The measurements go in rounds; within a
round every measurement takes the targets in turn, each round starting one target later;
the calls of all rounds are pooled. The run also records the gateway's CPU time per
listing (user + system, psutil) for the targets it serves.

It prints a markdown summary and writes every number to
`bench/results/aggregate-<time>.json`. Traffic stays on 127.0.0.1, every loop is bounded
in count and time, and every process started is stopped, Ctrl-C included.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio

from bench import clients, runner, targets
from bench.clients import CALL_TIMEOUT, HTTPSession, Message, SocketHTTPSession
from bench.measure import LoadResult, LoadSample
from bench.processes import BenchError, ProcessSupervisor, ServerProcess, free_port
from bench.report import RAW_HTTP, SOCKET_HTTP
from bench.runner import cpu_seconds, describe, rotated

GOAL_MARGIN_MS = 5.0
"""The aggregate's p50 may exceed the slowest member's by at most this much."""
FRESH_TTL = "1us"
"""The shortest `cacheTtl` the configuration takes ("0s" is refused, "1ns" rounds to it)."""
FRESH = "all"
CACHED = "all-cached"
SLOW_FIRST = "all-slow-first"
"""With `--slow-first`: `FRESH` with the slow member first in `servers` (the order members are asked in)."""
DIRECT = "direct"
VIA_GATEWAY = "mcp-front"
SETUP_TIMEOUT = 120.0
ROUND_WARMUP = 3
"""Untimed listings per session at the start of every round after the first."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    tools: int
    list_delay_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Settings:
    rounds: int
    calls_c1: int
    calls_c10: int
    warmup_c1: int
    warmup_c10: int
    phase_time_limit: float
    """Seconds any one measurement of one round may run before it stops with what it has."""

    @classmethod
    def full(cls) -> Settings:
        return cls(
            rounds=4, calls_c1=1200, calls_c10=2400, warmup_c1=50, warmup_c10=10, phase_time_limit=10.0
        )

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=2, calls_c1=300, calls_c10=600, warmup_c1=20, warmup_c10=5, phase_time_limit=4.0)


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    via: str
    """`DIRECT` or `VIA_GATEWAY`."""
    tools: int
    """Tools every answer must hold."""
    port: int
    path: str
    headers: dict[str, str]
    member: str | None = None
    """The member this target serves, `None` for an aggregate."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


class ListSession(Protocol):
    async def list_tools(self) -> list[Message]: ...


@dataclass(slots=True)
class Case:
    """One row: a target, a client and a concurrency, with its sessions open for the whole run."""

    target: Target
    client: str
    concurrency: int
    calls: int
    warmup: int
    sessions: list[ListSession] = field(default_factory=list)
    samples: list[LoadSample] = field(default_factory=list)
    warmed: bool = False
    gateway_cpu_seconds: float = 0.0
    gateway_calls: int = 0
    error: str | None = None


@dataclass(slots=True)
class Row:
    target: str
    via: str
    tools: int
    client: str
    concurrency: int
    result: LoadResult | None = None
    min_ms: float | None = None
    gateway_cpu_us: float | None = None
    """The gateway's CPU time per listing (warm-up listings counted), for its own targets."""
    error: str | None = None


@dataclass(slots=True)
class GoalCheck:
    client: str
    concurrency: int
    slowest_member: str
    """The member with the highest p50 directly."""
    slowest_direct_p50_ms: float
    slowest_gateway_member: str
    """The member with the highest p50 through mcp-front."""
    slowest_gateway_p50_ms: float
    aggregate_p50_ms: float
    cached_p50_ms: float | None
    margin_direct_ms: float
    """`slowest direct + 5 ms - aggregate`: positive when the goal is met."""
    margin_gateway_ms: float
    """The same against the slowest member through mcp-front."""

    @property
    def met(self) -> bool:
        return self.margin_direct_ms >= 0


@dataclass(slots=True)
class AggregateReport:
    started: str
    quick: bool
    members: list[dict[str, Any]]
    machine: dict[str, object]
    settings: dict[str, object]
    seconds: float = 0.0
    interrupted: bool = False
    rows: list[Row] = field(default_factory=list)
    goals: list[GoalCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, target: str, client: str, concurrency: int) -> Row | None:
        for row in self.rows:
            if (row.target, row.client, row.concurrency) == (target, client, concurrency):
                return row
        return None

    def check_goals(self, members: list[Member]) -> None:
        self.goals = []
        delays = {member.name: member.list_delay_ms for member in members}
        combos = dict.fromkeys((row.client, row.concurrency) for row in self.rows)
        for client, concurrency in combos:
            direct = {
                name: row.result
                for name in delays
                if (row := self.row(_label(name, DIRECT), client, concurrency)) and row.result
            }
            gateway = {
                name: row.result
                for name in delays
                if (row := self.row(_label(name, VIA_GATEWAY), client, concurrency)) and row.result
            }
            fresh = self.row(FRESH, client, concurrency)
            cached = self.row(CACHED, client, concurrency)
            if len(direct) < len(delays) or len(gateway) < len(delays) or not fresh or not fresh.result:
                continue
            slowest = max(direct, key=lambda name: direct[name].p50_ms)
            slowest_via = max(gateway, key=lambda name: gateway[name].p50_ms)
            slowest_gateway = gateway[slowest_via].p50_ms
            aggregate = fresh.result.p50_ms
            self.goals.append(
                GoalCheck(
                    client=client,
                    concurrency=concurrency,
                    slowest_member=slowest,
                    slowest_direct_p50_ms=direct[slowest].p50_ms,
                    slowest_gateway_member=slowest_via,
                    slowest_gateway_p50_ms=slowest_gateway,
                    aggregate_p50_ms=aggregate,
                    cached_p50_ms=cached.result.p50_ms if cached and cached.result else None,
                    margin_direct_ms=direct[slowest].p50_ms + GOAL_MARGIN_MS - aggregate,
                    margin_gateway_ms=slowest_gateway + GOAL_MARGIN_MS - aggregate,
                )
            )
            longest = max(delays.values())
            if fresh.min_ms is not None and fresh.min_ms < longest:
                self.notes.append(
                    f"{FRESH} ({client}, c={concurrency}): its fastest listing took {fresh.min_ms:.3f} ms, "
                    f"under the slow member's {longest:g} ms delay: some answers were not fresh"
                )

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    def markdown(self) -> str:
        packages = self.machine.get("gateway_packages")
        served = ""
        if isinstance(packages, dict):
            served = ", served by " + ", ".join(
                f"{name} {packages.get(name) or 'absent'}" for name in ("uvicorn", "uvloop", "httptools")
            )
        load = (self.machine.get("load_average_before"), self.machine.get("load_average_after"))
        members = ", ".join(
            f"{m['name']} ({m['tools']} tools"
            + (f", tools/list delayed {m['list_delay_ms']:g} ms" if m["list_delay_ms"] else "")
            + ")"
            for m in self.members
        )
        slow_first_note = f"; `{SLOW_FIRST}`: `{FRESH}` with the slow member first in `servers`"
        lines = [
            f"Run of {self.started}{' (quick)' if self.quick else ''}, {self.seconds:.0f} s; "
            f"{self.machine.get('cpus')} CPUs ({self.machine.get('cpu_model')}), "
            f"Python {self.machine.get('python')}; mcp-front at {self.machine.get('revision')}{served}; "
            f"load average {load[0]} before, {load[1]} after.",
            "",
            f"Members: {members}. `{FRESH}`: aggregate with cacheTtl {FRESH_TTL} (every listing fresh); "
            f"`{CACHED}`: the same with the default cacheTtl"
            + (slow_first_note if any(row.target == SLOW_FIRST for row in self.rows) else "")
            + ".",
            "",
            "`tools/list` round trip, each worker one session opened before the first round and reused:",
            "",
            "| target | via | tools | client | c | calls | p50 ms | p99 ms | min ms | calls/s | "
            "gateway CPU µs/list |",
            "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for row in self.rows:
            head = f"| {row.target} | {row.via} | {row.tools} | {row.client} | {row.concurrency} |"
            if row.result is None:
                lines.append(f"{head} failed: {row.error or 'not run'} | | | | | |")
                continue
            r = row.result
            calls = f"{r.calls}{' (time limit)' if r.truncated else ''}"
            cpu = f"{row.gateway_cpu_us:.0f}" if row.gateway_cpu_us is not None else ""
            lines.append(
                f"{head} {calls} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {row.min_ms:.3f} | "
                f"{r.calls_per_second:.0f} | {cpu} |"
            )
        lines += [
            "",
            f"Goal: the aggregate's `tools/list` p50 is at most the slowest member's p50 "
            f"+ {GOAL_MARGIN_MS:g} ms (fresh listing, `{FRESH}`):",
            "",
            "| client | c | slowest member directly: p50 ms | slowest member via mcp-front: p50 ms | "
            "aggregate p50 ms | margin vs direct ms | margin vs via mcp-front ms | cached aggregate p50 ms "
            "| goal |",
            "|---|--:|--:|--:|--:|--:|--:|--:|---|",
        ]
        for g in self.goals:
            cached = f"{g.cached_p50_ms:.3f}" if g.cached_p50_ms is not None else ""
            lines.append(
                f"| {g.client} | {g.concurrency} | {g.slowest_member}: {g.slowest_direct_p50_ms:.3f} | "
                f"{g.slowest_gateway_member}: {g.slowest_gateway_p50_ms:.3f} | {g.aggregate_p50_ms:.3f} | "
                f"{g.margin_direct_ms:+.3f} | "
                f"{g.margin_gateway_ms:+.3f} | {cached} | {'met' if g.met else '**MISSED**'} |"
            )
        if not self.goals:
            lines.append("| not measured | | | | | | | | |")
        lines += [
            "",
            "Margin: the slowest member's p50 + 5 ms - the aggregate's p50; positive when the goal is met "
            "(judged against the member directly).",
        ]
        lines += [f"- note: {note}" for note in self.notes]
        return "\n".join(lines)


def _label(member: str, via: str) -> str:
    return member if via == DIRECT else f"{member} via mcp-front"


def default_members(list_delay_ms: float) -> list[Member]:
    return [Member("small", 5), Member("medium", 20, list_delay_ms), Member("large", 50)]


def gateway_config(
    config_dir: Path, port: int, members: dict[str, str], slow_first: list[str] | None = None
) -> Path:
    """`mcp-front serve`'s configuration: the members at their URLs and the two aggregates
    (three with `slow_first`, the members in that order)."""
    auths = [{"type": "bearer", "tokens": [targets.GATEWAY_TOKEN], "user": "bench@example.com"}]
    services: dict[str, Any] = {
        name: {"transportType": "streamable-http", "url": url, "serviceAuths": auths}
        for name, url in members.items()
    }
    services[FRESH] = {
        "type": "aggregate",
        "servers": list(members),
        "discovery": {"cacheTtl": FRESH_TTL},
        "serviceAuths": auths,
    }
    services[CACHED] = {"type": "aggregate", "servers": list(members), "serviceAuths": auths}
    if slow_first is not None:
        services[SLOW_FIRST] = {**services[FRESH], "servers": slow_first}
    config = {
        "version": "v0.0.1-DEV_EDITION_EXPECT_CHANGES",
        "proxy": {
            "baseURL": f"http://127.0.0.1:{port}",
            "addr": f"127.0.0.1:{port}",
            "name": "mcp-front bench",
            # One principal opens every session: lift the per-user limits.
            "sessions": {"maxPerUser": 500, "maxProcesses": 300},
            "rateLimits": targets.UNREACHED_LIMITS,
        },
        "mcpServers": services,
    }
    path = config_dir / f"gateway-aggregate-{port}.json"
    path.write_text(json.dumps(config, indent=2))
    return path


async def run_listings(case: Case, calls: int, time_limit: float) -> LoadSample:
    """The case's sessions list tools, one request at a time each, until `calls` are done.

    Untimed listings come first: the case's warm-up in the first round (which also waits
    for an aggregate's members to connect), `ROUND_WARMUP` per session in later ones.
    """
    latencies: list[float] = []
    finished: list[float] = []
    remaining = calls
    truncated = False
    expected = case.target.tools

    async def listed(session: ListSession) -> None:
        with anyio.fail_after(CALL_TIMEOUT):
            tools = await session.list_tools()
        if len(tools) != expected:
            raise BenchError(f"{case.target.label}: tools/list returned {len(tools)} tools, not {expected}")

    async def warm(session: ListSession) -> None:
        for _ in range(warmup):
            await listed(session)

    warmup = ROUND_WARMUP if case.warmed else case.warmup
    with anyio.fail_after(SETUP_TIMEOUT):
        async with anyio.create_task_group() as task_group:
            for session in case.sessions:
                task_group.start_soon(warm, session)
    case.warmed = True

    started = time.perf_counter()
    deadline = started + time_limit

    async def worker(session: ListSession) -> None:
        nonlocal remaining, truncated
        while remaining > 0:
            if time.perf_counter() > deadline:
                truncated = True
                break
            remaining -= 1
            begun = time.perf_counter()
            await listed(session)
            latencies.append(time.perf_counter() - begun)
        finished.append(time.perf_counter())

    async with anyio.create_task_group() as task_group:
        for session in case.sessions:
            task_group.start_soon(worker, session)
    return LoadSample(latencies, max(finished) - started, truncated)


class AggregateHarness:
    def __init__(
        self,
        supervisor: ProcessSupervisor,
        settings: Settings,
        report: AggregateReport,
        members: list[Member],
        config_dir: Path,
        gateway_src: Path | None = None,
        slow_first: bool = False,
    ) -> None:
        self.gateway_src = gateway_src
        self.slow_first = slow_first
        self.supervisor = supervisor
        self.settings = settings
        self.report = report
        self.members = members
        self.config_dir = config_dir
        self.gateway_pid: int | None = None

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    @asynccontextmanager
    async def server(self, spec: targets.ServerSpec) -> AsyncIterator[ServerProcess]:
        server = await anyio.to_thread.run_sync(
            lambda: self.supervisor.start_server(
                spec.name, spec.argv, port=spec.port, env=spec.env, cwd=spec.cwd
            )
        )
        try:
            yield server
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.supervisor.stop, server)

    async def run(self) -> None:
        cases: list[Case] = []
        try:
            async with AsyncExitStack() as stack:
                all_targets = await self._start(stack)
                for client, concurrency in ((RAW_HTTP, 1), (SOCKET_HTTP, 1), (RAW_HTTP, 10)):
                    for target in all_targets:
                        cases.append(await self._open_case(stack, target, client, concurrency))
                by_measurement: dict[tuple[str, int], list[Case]] = {}
                for case in cases:
                    by_measurement.setdefault((case.client, case.concurrency), []).append(case)
                for round_number in range(self.settings.rounds):
                    self.log(f"round {round_number + 1} of {self.settings.rounds}")
                    for measurement in by_measurement.values():
                        for case in rotated(measurement, round_number):
                            await self._round(case)
        finally:
            self._record(cases)
            self.report.check_goals(self.members)

    async def _start(self, stack: AsyncExitStack) -> list[Target]:
        urls: dict[str, str] = {}
        found: list[Target] = []
        for member in self.members:
            spec = targets.http_member_spec(member.tools, member.list_delay_ms)(free_port())
            self.log(f"starting member {member.name} ({member.tools} tools) on port {spec.port}")
            await stack.enter_async_context(self.server(spec))
            urls[member.name] = spec.url
            found.append(Target(member.name, DIRECT, member.tools, spec.port, spec.path, {}, member.name))
        port = free_port()
        slow_first = None
        if self.slow_first:
            slow_first = [m.name for m in sorted(self.members, key=lambda m: m.list_delay_ms, reverse=True)]
        config = gateway_config(self.config_dir, port, urls, slow_first)
        if self.gateway_src is None:
            command, env = targets.gateway_command(), None
        else:
            # The sources on PYTHONPATH come before the editable install's path entry.
            command = [sys.executable, "-m", "mcp_front.cli"]
            env = {**os.environ, "PYTHONPATH": str(self.gateway_src)}
        gateway = targets.ServerSpec(
            name="mcp-front",
            argv=[*command, "serve", "--config", str(config)],
            port=port,
            path="/",
            env=env,
        )
        self.log(f"starting mcp-front on port {port}")
        server = await stack.enter_async_context(self.server(gateway))
        self.gateway_pid = server.pid
        headers = {"authorization": f"Bearer {targets.GATEWAY_TOKEN}"}
        for member in self.members:
            found.append(
                Target(
                    _label(member.name, VIA_GATEWAY),
                    VIA_GATEWAY,
                    member.tools,
                    port,
                    f"/{member.name}/mcp",
                    headers,
                    member.name,
                )
            )
        total = sum(member.tools for member in self.members)
        for name in (FRESH, CACHED, *((SLOW_FIRST,) if slow_first else ())):
            found.append(Target(name, VIA_GATEWAY, total, port, f"/{name}/mcp", headers))
        return found

    async def _open_case(self, stack: AsyncExitStack, target: Target, client: str, concurrency: int) -> Case:
        s = self.settings
        calls, warmup = (s.calls_c1, s.warmup_c1) if concurrency == 1 else (s.calls_c10, s.warmup_c10)
        case = Case(target, client, concurrency, calls, warmup)
        try:
            with anyio.fail_after(SETUP_TIMEOUT):
                if client == RAW_HTTP:
                    http = await stack.enter_async_context(clients.new_http_client(concurrency + 2))
                    for _ in range(concurrency):
                        session = HTTPSession(http, target.url, target.headers)
                        await session.open()
                        stack.push_async_callback(_closed, session)
                        case.sessions.append(session)
                else:
                    for _ in range(concurrency):
                        socket = _SocketSession("127.0.0.1", target.port, target.path, target.headers)
                        await socket.open()
                        stack.push_async_callback(_closed, socket)
                        case.sessions.append(socket)
        except Exception as exc:
            case.error = describe(exc)
            self.log(f"{target.label} / {client} c={concurrency}: {case.error}")
        return case

    async def _round(self, case: Case) -> None:
        if case.error is not None:
            return
        calls = max(1, case.calls // self.settings.rounds)
        self.log(f"  {case.target.label} / {case.client}: {calls} listings at c={case.concurrency}")
        watch = self.gateway_pid if case.target.via == VIA_GATEWAY else None
        cpu_before = cpu_seconds(watch) if watch else 0.0
        warm_calls = (ROUND_WARMUP if case.warmed else case.warmup) * case.concurrency
        try:
            sample = await run_listings(case, calls, self.settings.phase_time_limit)
        except Exception as exc:
            case.error = describe(exc)
            self.log(f"    failed: {case.error}")
            return
        case.samples.append(sample)
        if watch:
            case.gateway_cpu_seconds += cpu_seconds(watch) - cpu_before
            case.gateway_calls += len(sample.latencies) + warm_calls

    def _record(self, cases: list[Case]) -> None:
        for case in cases:
            target = case.target
            row = Row(target.label, target.via, target.tools, case.client, case.concurrency, error=case.error)
            if case.samples and case.error is None:
                row.result = LoadResult.merge(case.concurrency, case.samples)
                row.min_ms = 1000 * min(v for sample in case.samples for v in sample.latencies)
                if case.gateway_calls:
                    row.gateway_cpu_us = 1e6 * case.gateway_cpu_seconds / case.gateway_calls
            self.report.rows.append(row)


class _SocketSession(SocketHTTPSession):
    """The single-write socket client, reconnecting when the server has closed its idle
    keep-alive connection (uvicorn does after 5 s, and a session waits longer than that
    between its rounds); the untimed listings at the start of each round absorb this."""

    async def list_tools(self) -> list[Message]:
        try:
            return await super().list_tools()
        except (OSError, anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
            await self.drop_connection()
            return await super().list_tools()


async def _closed(session: HTTPSession | SocketHTTPSession) -> None:
    """End the session (DELETE); at teardown a failure to do so is no reason to lose the results."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(5), suppress(Exception):
        if isinstance(session, SocketHTTPSession):
            await session.drop_connection()  # the idle one may be closed by now
        await session.close()


def main(argv: list[str] | None = None) -> int:
    parser = runner.parser("aggregate", __doc__, "a short smoke run (about 30 seconds)")
    parser.add_argument(
        "--list-delay-ms",
        type=float,
        default=3.0,
        help="how long the slow member (20 tools) waits before answering tools/list (default 3)",
    )
    parser.add_argument(
        "--gateway-src",
        type=Path,
        metavar="DIR",
        help="run mcp-front from these sources (a directory holding the mcp_front package, such as "
        "a `git archive` of another commit's src/) instead of the installed ones",
    )
    parser.add_argument(
        "--slow-first",
        action="store_true",
        help=f"also measure {SLOW_FIRST}: the fresh aggregate with the slow member first in its servers",
    )
    args = parser.parse_args(argv)
    gateway_src: Path | None = args.gateway_src.resolve() if args.gateway_src else None
    if gateway_src is not None and not (gateway_src / "mcp_front" / "__init__.py").exists():
        print(f"error: {gateway_src} holds no mcp_front package", file=sys.stderr)
        return 2
    settings = Settings.quick() if args.quick else Settings.full()
    members = default_members(args.list_delay_ms)
    run = runner.BenchRun.begin("aggregate", args.output, "logs-aggregate")

    def prepare(supervisor: ProcessSupervisor) -> tuple[AggregateReport, Callable[[], Awaitable[None]]]:
        report = AggregateReport(
            started=run.started_text,
            quick=args.quick,
            members=[asdict(member) for member in members],
            machine=targets.machine_info(None, None),
            settings=asdict(settings),
        )
        report.machine["gateway_packages"] = targets.gateway_packages(targets.gateway_command()[0])
        if gateway_src is not None:
            report.machine["revision"] = f"sources in {gateway_src}"
        harness = AggregateHarness(
            supervisor, settings, report, members, run.logs, gateway_src, args.slow_first
        )
        return report, harness.run

    return run.execute(prepare)


if __name__ == "__main__":
    sys.exit(main())

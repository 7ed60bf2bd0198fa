"""Benchmark: mcp-front in front of a stdio server, side by side with direct use and two bridges.

    python -m bench.stdio            # the full run (about three minutes)
    python -m bench.stdio --quick    # a short smoke run

Every target serves the same backend, `examples/demo_server.py`, run by this Python:

* direct stdio, spawned by the benchmark: the raw newline-JSON client, and the SDK's
  `stdio_client` under `mcp.Client`, so the client's own cost shows;
* mcp-front (`mcp-front serve`, one stdio service, a bearer token): a process per session;
* supergateway (npm) in stateful streamable-HTTP mode: a process per session;
* mcp-proxy (PyPI, its own venv): one process shared by every session;
* an HTTP floor: uvicorn answering `echo` itself, no backend (what HTTP alone costs).

It measures the `tools/call` round trip (p50, p99) and calls per second at concurrency
1 and 10, the time from a new session's first request to its first tool result, and
each server's memory per idle session. The HTTP targets run side by side and the
measurements go in rounds, each target in turn, so a passing disturbance on the
machine touches them all alike; the calls of all rounds are pooled.

It prints a markdown summary and writes every number to `bench/results/stdio-<time>.json`.
Traffic stays on 127.0.0.1, every loop is bounded in count and time, and every process
started is stopped, Ctrl-C included.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TextIO

import anyio
import httpx2

from bench import clients, runner, targets
from bench.clients import SessionFactory
from bench.measure import (
    FirstResult,
    LoadResult,
    LoadSample,
    LoadSpec,
    idle_session_memory,
    run_load,
    summarise,
    time_to_first_result,
)
from bench.processes import BenchError, ProcessSupervisor, ServerProcess, free_port
from bench.report import (
    DIRECT,
    FLOOR,
    GATEWAY,
    NOT_RUN,
    RAW_HTTP,
    RAW_STDIO,
    SOCKET_HTTP,
    FirstResultRow,
    MemoryRow,
    Report,
    ThroughputRow,
)
from bench.runner import attempt, describe

SDK_STDIO = "SDK stdio_client"
SDK_HTTP = "SDK streamable_http_client"


@dataclass(frozen=True, slots=True)
class Settings:
    rounds: int
    calls_c1: int
    calls_c10: int
    sdk_calls_c1: int
    sdk_calls_c10: int
    warmup_c1: int
    warmup_c10: int
    first_result_samples: int
    idle_sessions: int
    phase_time_limit: float
    """Seconds any one measurement of one round may run before it stops with what it has."""

    @classmethod
    def full(cls) -> Settings:
        return cls(4, 2000, 5000, 1000, 2000, 100, 20, 20, 100, 60.0)

    @classmethod
    def quick(cls) -> Settings:
        return cls(1, 200, 500, 100, 200, 20, 5, 5, 20, 15.0)


@dataclass(frozen=True, slots=True)
class HTTPTarget:
    label: str
    build: targets.SpecBuilder
    first_result_note: str = ""
    memory_note: str = ""


@dataclass(slots=True)
class LoadCase:
    """One row of the throughput table, measured a share at a time in every round."""

    target: str
    client: str
    concurrency: int
    factory: SessionFactory
    calls: int
    warmup: int
    samples: list[LoadSample] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class FirstResultCase:
    target: str
    client: str
    factory: SessionFactory
    note: str
    timings: list[FirstResult] = field(default_factory=list)
    error: str | None = None


class Harness:
    """Runs every measurement of one benchmark run and fills in its `Report`."""

    def __init__(self, supervisor: ProcessSupervisor, settings: Settings, report: Report) -> None:
        self.supervisor = supervisor
        self.settings = settings
        self.report = report
        self.backend = targets.backend_command()

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    async def run(self, http_targets: list[HTTPTarget]) -> None:
        floor = HTTPTarget(FLOOR, targets.floor_spec())
        load_cases: list[LoadCase] = []
        first_cases: list[FirstResultCase] = []
        try:
            async with AsyncExitStack() as stack:
                errlog = stack.enter_context(clients.devnull_text())
                self._direct_cases(errlog, load_cases, first_cases)
                for target in [*http_targets, floor]:
                    self.log(f"starting {target.label}")
                    try:
                        _, spec = await stack.enter_async_context(self.server(target))
                    except BenchError as exc:
                        self.log(f"{target.label}: {exc}")
                        self.report.throughput.append(
                            ThroughputRow(target.label, RAW_HTTP, 1, error=str(exc))
                        )
                        continue
                    http = await stack.enter_async_context(clients.new_http_client(16))
                    self._http_cases(target, spec, http, load_cases, first_cases)
                for round_number in range(1, self.settings.rounds + 1):
                    self.log(f"round {round_number} of {self.settings.rounds}")
                    for case in load_cases:
                        await self._load_round(case)
                    for first in first_cases:
                        await self._first_result_round(first)
        finally:
            self._record(load_cases, first_cases)
        for target in http_targets:
            await self.memory(target)
        self.report.check_goals()

    # -- the cases ------------------------------------------------------------------------

    def _direct_cases(
        self, errlog: TextIO, load_cases: list[LoadCase], first_cases: list[FirstResultCase]
    ) -> None:
        raw = clients.raw_stdio_factory(self.backend)
        sdk = clients.sdk_stdio_factory(self.backend, errlog)
        load_cases += self._load_cases(DIRECT, RAW_STDIO, raw)
        load_cases += self._load_cases(DIRECT, SDK_STDIO, sdk, sdk=True)
        note = "spawn, initialize, initialized, tools/call"
        first_cases.append(FirstResultCase(DIRECT, RAW_STDIO, raw, note))
        first_cases.append(FirstResultCase(DIRECT, SDK_STDIO, sdk, note))

    def _http_cases(
        self,
        target: HTTPTarget,
        spec: targets.ServerSpec,
        http: httpx2.AsyncClient,
        load_cases: list[LoadCase],
        first_cases: list[FirstResultCase],
    ) -> None:
        raw = clients.raw_http_factory(http, spec.url, spec.headers)
        socket = clients.socket_http_factory("127.0.0.1", spec.port, spec.path, spec.headers)
        load_cases += self._load_cases(target.label, RAW_HTTP, raw)
        load_cases += self._load_cases(target.label, SOCKET_HTTP, socket, concurrencies=(1,))
        if target.label == GATEWAY:
            sdk = clients.sdk_http_factory(spec.url, spec.headers)
            load_cases += self._load_cases(target.label, SDK_HTTP, sdk, sdk=True, concurrencies=(1,))
        if target.label != FLOOR:
            first_cases.append(FirstResultCase(target.label, RAW_HTTP, raw, target.first_result_note))

    def _load_cases(
        self,
        target: str,
        client: str,
        factory: SessionFactory,
        *,
        sdk: bool = False,
        concurrencies: tuple[int, ...] = (1, 10),
    ) -> list[LoadCase]:
        s = self.settings
        cases = []
        for concurrency in concurrencies:
            if concurrency == 1:
                calls, warmup = (s.sdk_calls_c1 if sdk else s.calls_c1), s.warmup_c1
            else:
                calls, warmup = (s.sdk_calls_c10 if sdk else s.calls_c10), s.warmup_c10
            cases.append(LoadCase(target, client, concurrency, factory, calls, warmup))
        return cases

    # -- one round of one case --------------------------------------------------------------

    async def _load_round(self, case: LoadCase) -> None:
        if case.error is not None:
            return
        calls = max(1, case.calls // self.settings.rounds)
        spec = LoadSpec(calls, case.concurrency, case.warmup, self.settings.phase_time_limit)
        self.log(f"  {case.target} / {case.client}: {calls} calls at c={case.concurrency}")
        sample, case.error = await attempt(run_load(case.factory, spec))
        if sample is not None:
            case.samples.append(sample)
        else:
            self.log(f"    failed: {case.error}")

    async def _first_result_round(self, case: FirstResultCase) -> None:
        if case.error is not None:
            return
        samples = max(1, self.settings.first_result_samples // self.settings.rounds)
        self.log(f"  {case.target} / {case.client}: time to first result, {samples} new sessions")
        timings, case.error = await attempt(
            time_to_first_result(case.factory, samples, self.settings.phase_time_limit)
        )
        if timings is not None:
            case.timings += timings
        else:
            self.log(f"    failed: {case.error}")

    def _record(self, load_cases: list[LoadCase], first_cases: list[FirstResultCase]) -> None:
        for case in load_cases:
            row = ThroughputRow(case.target, case.client, case.concurrency, error=case.error)
            if case.samples and case.error is None:
                row.result = LoadResult.merge(case.concurrency, case.samples)
            elif row.error is None:
                row.error = NOT_RUN
            self.report.throughput.append(row)
        for first in first_cases:
            result = FirstResultRow(first.target, first.client, error=first.error, note=first.note)
            if first.timings and first.error is None:
                result.summary = summarise(
                    [t.answered for t in first.timings], [t.opened for t in first.timings]
                )
            elif result.error is None:
                result.error = NOT_RUN
            self.report.first_result.append(result)

    # -- servers and memory -------------------------------------------------------------------

    @asynccontextmanager
    async def server(self, target: HTTPTarget) -> AsyncIterator[tuple[ServerProcess, targets.ServerSpec]]:
        spec = target.build(free_port())
        server = await anyio.to_thread.run_sync(
            lambda: self.supervisor.start_server(
                spec.name, spec.argv, port=spec.port, env=spec.env, cwd=spec.cwd
            )
        )
        try:
            yield server, spec
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.supervisor.stop, server)

    async def memory(self, target: HTTPTarget) -> None:
        sessions = self.settings.idle_sessions
        self.log(f"{target.label}: memory of {sessions} idle sessions (fresh instance)")
        row = MemoryRow(target.label, note=target.memory_note)
        try:
            async with self.server(target) as (server, spec), clients.new_http_client(16) as http:
                factory = clients.raw_http_factory(http, spec.url, spec.headers)
                with anyio.fail_after(self.settings.phase_time_limit * 3):
                    row.result = await idle_session_memory(factory, server.pid, sessions)
        except Exception as exc:
            row.error = describe(exc)
            self.log(f"{target.label}: memory failed: {row.error}")
        self.report.memory.append(row)


def _variant_label(venv: Path) -> str:
    return f"{GATEWAY} ({venv.name})"


def _http_targets(config_dir: Path, extra_gateways: list[Path]) -> tuple[list[HTTPTarget], list[str]]:
    """mcp-front, any extra installs of it, and the peers available here.

    A peer that is missing is named, not fatal.
    """
    gateway_notes = {
        "first_result_note": "initialize (spawns), initialized, tools/call",
        "memory_note": "a process per session",
    }
    found = [HTTPTarget(GATEWAY, targets.gateway_spec(config_dir), **gateway_notes)]
    for venv in extra_gateways:
        command = targets.gateway_command(venv)
        found.append(
            HTTPTarget(_variant_label(venv), targets.gateway_spec(config_dir, command), **gateway_notes)
        )
    missing: list[str] = []
    node, script = targets.node_binary(), targets.supergateway_script()
    if node and script:
        found.append(
            HTTPTarget(
                "supergateway",
                targets.supergateway_spec(node, script),
                first_result_note="initialize (spawns via sh), initialized, tools/call",
                memory_note="a process per session (sh and python)",
            )
        )
    else:
        missing.append("supergateway (run `npm ci --prefix tests/node`)")
    try:
        executable = targets.ensure_mcp_proxy()
    except BenchError as exc:
        missing.append(f"mcp-proxy ({exc})")
    else:
        found.append(
            HTTPTarget(
                "mcp-proxy",
                targets.mcp_proxy_spec(executable),
                first_result_note="one child shared by all sessions, started with the proxy: no spawn",
                memory_note="one child shared by all sessions",
            )
        )
    return found, missing


def main(argv: list[str] | None = None) -> int:
    parser = runner.parser("stdio", __doc__, "a short smoke run (under a minute)")
    targets.add_gateway_venv_option(parser)
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings.full()
    run = runner.BenchRun.begin("stdio", args.output, "logs")

    def prepare(supervisor: ProcessSupervisor) -> tuple[Report, Callable[[], Awaitable[None]]]:
        http_targets, missing = _http_targets(run.logs, args.gateway_venv)
        for name in missing:
            print(f"skipping {name}", file=sys.stderr)
        mcp_proxy = targets.MCP_PROXY_VENV / "bin" / "mcp-proxy"
        report = Report(
            started=run.started_text,
            quick=args.quick,
            machine=targets.machine_info(targets.node_binary(), mcp_proxy if mcp_proxy.exists() else None),
            settings=asdict(settings),
        )
        report.machine["gateway_packages"] = targets.gateway_packages(targets.gateway_command()[0])
        for venv in args.gateway_venv:
            variant = targets.gateway_packages(targets.gateway_command(venv)[0])
            report.machine[f"gateway_packages {_variant_label(venv)}"] = variant
        harness = Harness(supervisor, settings, report)
        return report, partial(harness.run, http_targets)

    return run.execute(prepare)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: mcp-front in front of a streamable-HTTP server, side by side with direct use and two proxies.

    python -m bench.http_backend            # the full run (about four minutes)
    python -m bench.http_backend --quick    # a short smoke run (about a minute)

Every target serves the same backend, one instance of `bench.http_backend_server` (a
fast, stateful streamable-HTTP MCP server in plain ASGI on uvicorn, tool `echo`),
started once by the benchmark:

* the backend directly;
* mcp-front (`mcp-front serve`, one `"transportType": "streamable-http"` service, a
  bearer token): a backend session per client session;
* fastmcp's `create_proxy(url)` (PyPI, its own venv): a fresh backend session for every
  request it forwards, fastmcp's default;
* fastmcp's `create_proxy(client)` with one connected client: one backend session
  shared by every client session;
* mcp-proxy (PyPI, its own venv), whose client mode serves stdio only, in front of
  itself: `mcp-proxy --port P -- mcp-proxy --transport streamablehttp URL`, one child
  and one backend session shared by every client session.

It measures the `tools/call` round trip (p50, p99) and calls per second at concurrency
1 and 10 with the benchmark's raw HTTP client (and its single-write socket client at
c=1), and the time from a new session's first request to its first tool result. All
targets run side by side; the measurements go in rounds, and within a round every
measurement takes the targets in turn, starting each round with the next target, so
neither a passing disturbance nor the order favours one. The calls of all rounds are
pooled.

It prints a markdown summary and writes every number to
`bench/results/http-backend-<time>.json`. Traffic stays on 127.0.0.1, every loop is
bounded in count and time, and every process started is stopped, Ctrl-C included.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from bench import clients, runner, targets
from bench.measure import LoadResult
from bench.processes import BenchError, ProcessSupervisor, free_port
from bench.report import ADDED_P50_GOAL_MS, GATEWAY, RAW_HTTP, SOCKET_HTTP, GoalCheck, Report, ThroughputRow
from bench.runner import cpu_seconds, rotated
from bench.stdio import FirstResultCase, Harness, HTTPTarget, LoadCase, Settings

DIRECT_HTTP = "direct HTTP backend"
FASTMCP = "fastmcp create_proxy"
FASTMCP_CONNECTED = "fastmcp create_proxy (connected client)"
MCP_PROXY = "mcp-proxy (HTTP to HTTP)"
PROXIES = {"fastmcp": (FASTMCP, FASTMCP_CONNECTED), "mcp-proxy": (MCP_PROXY,)}
"""The Python proxies of the throughput goal, each with the rows that stand for it (its best counts)."""
THROUGHPUT_GOAL_FACTOR = 2.0
SERVING_PACKAGES = ("uvicorn", "uvloop", "httptools", "starlette", "anyio")


def full_settings() -> Settings:
    return Settings(
        rounds=4,
        calls_c1=2000,
        calls_c10=5000,
        sdk_calls_c1=0,
        sdk_calls_c10=0,
        warmup_c1=100,
        warmup_c10=20,
        first_result_samples=20,
        idle_sessions=0,
        phase_time_limit=8.0,
    )


def quick_settings() -> Settings:
    return Settings(
        rounds=2,
        calls_c1=400,
        calls_c10=1000,
        sdk_calls_c1=0,
        sdk_calls_c10=0,
        warmup_c1=20,
        warmup_c10=5,
        first_result_samples=6,
        idle_sessions=0,
        phase_time_limit=3.0,
    )


@dataclass(slots=True)
class CPURow:
    """CPU time per call of one load row, summed over its rounds (user and system time).

    Calls include the untimed warm-up calls of each round; session set-up is in the
    CPU time too, a small share. Unlike wall-clock rates, CPU per call hardly moves
    when other work shares the machine.
    """

    target: str
    client: str
    concurrency: int
    calls: int = 0
    server_seconds: float = 0.0
    """The target's process and its children (for the direct row: the backend)."""
    backend_seconds: float = 0.0

    @property
    def server_us(self) -> float:
        return 1e6 * self.server_seconds / self.calls if self.calls else float("nan")

    @property
    def backend_us(self) -> float:
        return 1e6 * self.backend_seconds / self.calls if self.calls else float("nan")


@dataclass(slots=True)
class HTTPBackendReport(Report):
    """`Report` with this benchmark's goals: the gateway's added p50 and its rate against the proxies."""

    cpu: list[CPURow] = field(default_factory=list)

    def markdown(self) -> str:
        text = Report.markdown(self)  # zero-argument super() fails in a slots dataclass
        if not self.cpu:
            return text
        head, goals, tail = text.partition("\n\nGoals:\n")
        lines = [
            "",
            "",
            "CPU time per call (user + system, warm-up calls included), µs: the target's process "
            "and its children, and the backend's while it served that target:",
            "",
            "| target | client | c | calls | target µs/call | backend µs/call |",
            "|---|---|--:|--:|--:|--:|",
        ]
        for row in self.cpu:
            own = "(is the backend)" if row.target == DIRECT_HTTP else f"{row.server_us:.0f}"
            lines.append(
                f"| {row.target} | {row.client} | {row.concurrency} | {row.calls} | {own} | "
                f"{row.backend_us:.0f} |"
            )
        return head + "\n".join(lines) + goals + tail

    def check_goals(self) -> None:
        self.goals = [
            self._added_over_direct(RAW_HTTP),
            self._added_over_direct(SOCKET_HTTP),
            *(self._versus_proxies(c) for c in (1, 10)),
        ]

    def _added_over_direct(self, client: str) -> GoalCheck:
        goal = (
            f"mcp-front adds under {ADDED_P50_GOAL_MS:g} ms at p50 over the backend directly (c=1, {client})"
        )
        gateway = self.load(GATEWAY, client, 1)
        direct = self.load(DIRECT_HTTP, client, 1)
        if gateway is None or direct is None:
            return GoalCheck(goal, "not measured", None)
        added = gateway.p50_ms - direct.p50_ms
        measured = (
            f"adds {added:.3f} ms (p50 {gateway.p50_ms:.3f} ms through mcp-front "
            f"- {direct.p50_ms:.3f} ms direct)"
        )
        return GoalCheck(goal, measured, added < ADDED_P50_GOAL_MS)

    def _versus_proxies(self, concurrency: int) -> GoalCheck:
        goal = (
            f"mcp-front's rate at least {THROUGHPUT_GOAL_FACTOR:g}x each Python proxy's "
            f"(c={concurrency}, {RAW_HTTP})"
        )
        gateway = self.load(GATEWAY, RAW_HTTP, concurrency)
        best: dict[str, tuple[str, LoadResult]] = {}
        for proxy, labels in PROXIES.items():
            measured_rows = [
                (label, result)
                for label in labels
                if (result := self.load(label, RAW_HTTP, concurrency)) is not None
            ]
            if measured_rows:
                best[proxy] = max(measured_rows, key=lambda row: row[1].calls_per_second)
        if gateway is None or len(best) < len(PROXIES):
            return GoalCheck(goal, "not measured", None)
        ratios = {
            proxy: gateway.calls_per_second / result.calls_per_second for proxy, (_, result) in best.items()
        }
        measured = f"{gateway.calls_per_second:.0f} calls/s; " + ", ".join(
            f"{ratios[proxy]:.1f}x {label} ({result.calls_per_second:.0f} calls/s)"
            for proxy, (label, result) in best.items()
        )
        return GoalCheck(goal, measured, all(r >= THROUGHPUT_GOAL_FACTOR for r in ratios.values()))


class HTTPBackendHarness(Harness):
    """Starts the backend, then every target in front of it, and measures them in rotated rounds."""

    def __init__(self, supervisor: ProcessSupervisor, settings: Settings, report: HTTPBackendReport) -> None:
        super().__init__(supervisor, settings, report)
        self.cpu_report = report
        self.pids: dict[str, int] = {}
        self.cpu_rows: dict[tuple[str, str, int], CPURow] = {}

    async def _load_round(self, case: LoadCase) -> None:
        pid, backend_pid = self.pids.get(case.target), self.pids.get(DIRECT_HTTP)
        if pid is None or backend_pid is None:
            await super()._load_round(case)
            return
        samples = len(case.samples)
        server_before, backend_before = cpu_seconds(pid), cpu_seconds(backend_pid)
        await super()._load_round(case)
        if len(case.samples) == samples:
            return
        key = (case.target, case.client, case.concurrency)
        row = self.cpu_rows.setdefault(key, CPURow(*key))
        row.calls += len(case.samples[-1].latencies) + case.warmup * case.concurrency
        row.server_seconds += cpu_seconds(pid) - server_before
        row.backend_seconds += cpu_seconds(backend_pid) - backend_before

    async def run(self, http_targets: list[HTTPTarget]) -> None:
        """`http_targets[0]` is the backend itself: the others need it running."""
        load_cases: list[LoadCase] = []
        first_cases: list[FirstResultCase] = []
        try:
            async with AsyncExitStack() as stack:
                for index, target in enumerate(http_targets):
                    self.log(f"starting {target.label}")
                    try:
                        server, spec = await stack.enter_async_context(self.server(target))
                    except BenchError as exc:
                        if index == 0:
                            raise
                        self.log(f"{target.label}: {exc}")
                        self.report.throughput.append(
                            ThroughputRow(target.label, RAW_HTTP, 1, error=str(exc))
                        )
                        continue
                    self.pids[target.label] = server.pid
                    http = await stack.enter_async_context(clients.new_http_client(16))
                    raw = clients.raw_http_factory(http, spec.url, spec.headers)
                    socket = clients.socket_http_factory("127.0.0.1", spec.port, spec.path, spec.headers)
                    load_cases += self._load_cases(target.label, RAW_HTTP, raw)
                    load_cases += self._load_cases(target.label, SOCKET_HTTP, socket, concurrencies=(1,))
                    first_cases.append(FirstResultCase(target.label, RAW_HTTP, raw, target.first_result_note))
                measurements: dict[tuple[str, int], list[LoadCase]] = {}
                for case in load_cases:
                    measurements.setdefault((case.client, case.concurrency), []).append(case)
                for round_number in range(self.settings.rounds):
                    self.log(f"round {round_number + 1} of {self.settings.rounds}")
                    for cases in measurements.values():
                        for case in rotated(cases, round_number):
                            await self._load_round(case)
                    for first in rotated(first_cases, round_number):
                        await self._first_result_round(first)
        finally:
            self._record(load_cases, first_cases)
            self.cpu_report.cpu = [
                self.cpu_rows[key]
                for case in load_cases
                if (key := (case.target, case.client, case.concurrency)) in self.cpu_rows
            ]
        self.report.check_goals()


def _http_targets(
    config_dir: Path, backend_port: int, extra_gateways: list[Path]
) -> tuple[list[HTTPTarget], list[str]]:
    """The backend itself, mcp-front (and any extra installs of it), and the peers available
    here, all in front of it.

    A peer that is missing is named, not fatal.
    """
    backend = targets.http_backend_spec()(backend_port)
    url = backend.url
    found = [
        HTTPTarget(DIRECT_HTTP, lambda _: backend, first_result_note="initialize, initialized, tools/call"),
        HTTPTarget(
            GATEWAY,
            targets.gateway_http_spec(config_dir, url),
            first_result_note="initialize opens a backend session",
        ),
        *(
            HTTPTarget(
                f"{GATEWAY} ({venv.name})",
                targets.gateway_http_spec(config_dir, url, targets.gateway_command(venv)),
                first_result_note="initialize opens a backend session",
            )
            for venv in extra_gateways
        ),
    ]
    missing: list[str] = []
    try:
        python = targets.ensure_fastmcp()
    except BenchError as exc:
        missing.append(f"fastmcp ({exc})")
    else:
        found.append(
            HTTPTarget(
                FASTMCP,
                targets.fastmcp_proxy_spec(python, url),
                first_result_note="a fresh backend session for every forwarded request",
            )
        )
        found.append(
            HTTPTarget(
                FASTMCP_CONNECTED,
                targets.fastmcp_proxy_spec(python, url, connected=True),
                first_result_note="one backend session, opened at startup",
            )
        )
    try:
        executable = targets.ensure_mcp_proxy()
    except BenchError as exc:
        missing.append(f"mcp-proxy ({exc})")
    else:
        found.append(
            HTTPTarget(
                MCP_PROXY,
                targets.mcp_proxy_http_spec(executable, url),
                first_result_note="one child and backend session, opened at startup",
            )
        )
    return found, missing


def _report(quick: bool, run: runner.BenchRun, settings: Settings) -> HTTPBackendReport:
    mcp_proxy = targets.MCP_PROXY_VENV / "bin" / "mcp-proxy"
    report = HTTPBackendReport(
        started=run.started_text,
        quick=quick,
        machine=targets.machine_info(None, mcp_proxy if mcp_proxy.exists() else None),
        settings=asdict(settings),
    )
    report.machine["gateway_packages"] = targets.gateway_packages(targets.gateway_command()[0])
    fastmcp_python = targets.FASTMCP_VENV / "bin" / "python"
    if fastmcp_python.exists():
        report.machine["fastmcp_packages"] = targets.python_packages(
            fastmcp_python, ("fastmcp", "mcp", *SERVING_PACKAGES)
        )
    mcp_proxy_python = targets.MCP_PROXY_VENV / "bin" / "python"
    if mcp_proxy_python.exists():
        report.machine["mcp_proxy_packages"] = targets.python_packages(
            mcp_proxy_python, ("mcp-proxy", "mcp", *SERVING_PACKAGES)
        )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = runner.parser("http_backend", __doc__, "a short smoke run (about a minute)")
    targets.add_gateway_venv_option(parser)
    args = parser.parse_args(argv)
    settings = quick_settings() if args.quick else full_settings()
    run = runner.BenchRun.begin("http-backend", args.output, "logs-http-backend")

    def prepare(supervisor: ProcessSupervisor) -> tuple[HTTPBackendReport, Callable[[], Awaitable[None]]]:
        http_targets, missing = _http_targets(run.logs, free_port(), args.gateway_venv)
        for name in missing:
            print(f"skipping {name}", file=sys.stderr)
        report = _report(args.quick, run, settings)
        harness = HTTPBackendHarness(supervisor, settings, report)
        return report, partial(harness.run, http_targets)

    return run.execute(prepare)


if __name__ == "__main__":
    sys.exit(main())

"""Where mcp-front spends its time on an aggregate's `tools/list`: py-spy samples.

    pip install py-spy
    python -m bench.profile_aggregate            # c=1 and c=10, about a minute
    python -m bench.profile_aggregate --quick

Starts the members and the gateway of `bench.aggregate` (the same configuration), lists
the tools of the aggregate `all` (every listing fresh) through the gateway with the raw
HTTP client, and samples the gateway with py-spy meanwhile. For each concurrency it
writes a flame graph (`bench/results/gateway-aggregate-c<N>.svg`) and the raw stacks
(`gateway-aggregate-c<N>.txt`), and prints the share of samples by component, the
gateway's own functions that were innermost most often, and the share of samples under
some functions of the listing path (inclusive). Sampling slows the gateway a little: the
latencies printed here are for orientation, `bench.aggregate` is the measurement.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

import anyio

from bench import clients
from bench.aggregate import (
    FRESH,
    AggregateHarness,
    AggregateReport,
    Case,
    Settings,
    default_members,
    run_listings,
)
from bench.clients import HTTPSession
from bench.measure import LoadResult
from bench.processes import BenchError, ProcessSupervisor, ignoring_interrupts
from bench.profile_gateway import _LINE_NUMBER, PY_SPY_TIMEOUT, SAMPLE_RATE, _print_profile
from bench.profile_http_gateway import analyse
from bench.report import RAW_HTTP
from bench.runner import RESULTS_DIR

INCLUSIVE = (
    ("AggregateUpstream._gather (the client's task, members' tasks not counted)", "._gather ("),
    ("AggregateUpstream._gather.<locals>.collect (a member's task)", "_gather.<locals>.collect"),
    ("AggregateUpstream._list_member (one member's page)", "_list_member (mcp_front/backends/aggregate.py)"),
    ("AggregateUpstream._qualified_item", "_qualified_item (mcp_front/backends/aggregate.py)"),
    ("the streamable-HTTP upstream (mcp_front/backends/streamable_http.py)", "streamable_http.py"),
    ("the HTTP client to the members (httpx2, httpcore2)", "httpx2/"),
    ("httpcore2's pool checking each pooled connection (has_expired)", "has_expired ("),
    ("JSON encoding and decoding (json, orjson)", "json/"),
    ("logging", "logging/"),
    ("the audit log", "mcp_front/audit.py"),
    (
        "the access log's send wrapper (the answer's way out)",
        "AccessLogMiddleware.__call__.<locals>.send_with_status",
    ),
)


def inclusive_shares(collapsed: Path) -> tuple[int, list[tuple[str, int]]]:
    """Samples in all, and for each of `INCLUSIVE` the samples with a matching frame on the stack."""
    counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        for name, pattern in INCLUSIVE:
            if any(pattern in frame for frame in frames):
                counts[name] += count
    return total, [(name, counts[name]) for name, _ in INCLUSIVE]


async def _profile(py_spy: str, supervisor: ProcessSupervisor, calls: int, gateway_src: Path | None) -> None:
    settings = Settings.quick()
    members = default_members(3.0)
    report = AggregateReport("", True, [], {}, {})
    harness = AggregateHarness(supervisor, settings, report, members, supervisor.log_dir, gateway_src)
    async with AsyncExitStack() as stack:
        found = await harness._start(stack)
        target = next(t for t in found if t.label == FRESH)
        assert harness.gateway_pid is not None
        for concurrency in (1, 10):
            http = await stack.enter_async_context(clients.new_http_client(concurrency + 2))
            case = Case(target, RAW_HTTP, concurrency, calls, warmup=20)
            for _ in range(concurrency):
                session = HTTPSession(http, target.url, target.headers)
                await session.open()
                case.sessions.append(session)
            await run_listings(case, max(50, calls // 10), 30.0)
            collapsed = RESULTS_DIR / f"gateway-aggregate-c{concurrency}.txt"
            flame = RESULTS_DIR / f"gateway-aggregate-c{concurrency}.svg"
            result: LoadResult | None = None
            for output, fmt in ((collapsed, "raw"), (flame, "flamegraph")):
                command = [py_spy, "record", "--pid", str(harness.gateway_pid), "--rate", str(SAMPLE_RATE)]
                command += ["--format", fmt, "--output", str(output), "--nonblocking"]
                recorder = await anyio.open_process(
                    command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                try:
                    await anyio.sleep(0.5)
                    sample = await run_listings(case, calls // 2, 60.0)
                finally:
                    recorder.send_signal(signal.SIGINT)  # py-spy writes its output and exits
                    with anyio.move_on_after(PY_SPY_TIMEOUT):
                        await recorder.wait()
                    if recorder.returncode is None:
                        recorder.kill()
                    await recorder.aclose()
                if fmt == "raw":
                    result = LoadResult.merge(concurrency, [sample])
            for session in case.sessions:
                await session.close()
            if result is None or not collapsed.exists():
                raise BenchError("py-spy wrote no profile; it needs ptrace permission on the gateway")
            _print_profile(f"mcp-front, aggregate tools/list at c={concurrency}", result, analyse(collapsed))
            total, shares = inclusive_shares(collapsed)
            print("\nShare of samples with the function on the stack (inclusive):\n")
            for name, count in shares:
                print(f"- {100 * count / total:5.1f}%  {name}")
            print(f"\nflame graph: {flame}\nstacks: {collapsed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_aggregate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer listings")
    parser.add_argument("--py-spy", help="the py-spy executable (default: on PATH or beside this Python)")
    parser.add_argument(
        "--gateway-src",
        type=Path,
        metavar="DIR",
        help="run mcp-front from these sources (see bench.aggregate)",
    )
    args = parser.parse_args(argv)
    py_spy = args.py_spy or shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    logs = RESULTS_DIR / "logs-aggregate"
    logs.mkdir(parents=True, exist_ok=True)
    supervisor = ProcessSupervisor(logs)
    try:
        gateway_src = args.gateway_src.resolve() if args.gateway_src else None
        anyio.run(_profile, py_spy, supervisor, 600 if args.quick else 2000, gateway_src)
    except KeyboardInterrupt:
        return 130
    finally:
        with ignoring_interrupts():
            supervisor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

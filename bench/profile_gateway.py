"""Where mcp-front spends its time under load: py-spy samples of `mcp-front serve`.

    pip install py-spy
    python -m bench.profile_gateway            # c=1 and c=10, about 40 seconds
    python -m bench.profile_gateway --quick

It starts the gateway as `bench.stdio` does, drives `echo` calls through it with the
same raw HTTP client, and samples the gateway process (not its children) with py-spy
while it serves them. For each concurrency it writes a flame graph
(`bench/results/gateway-c<N>.svg`) and the raw stacks (`gateway-c<N>.txt`), and prints
the share of samples by component and the gateway's own functions that were on the
stack most often. Sampling slows the gateway a little: the latencies printed here are
for orientation, `bench.stdio` is the measurement.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import anyio

from bench import clients, targets
from bench.measure import LoadResult, LoadSpec, run_load
from bench.processes import BenchError, ProcessSupervisor, ServerProcess, free_port, ignoring_interrupts
from bench.runner import RESULTS_DIR

SAMPLE_RATE = 250
PY_SPY_TIMEOUT = 60.0

# (component, pattern found in a frame), tried from the innermost frame outwards.
_LEAF_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("waiting in epoll (idle)", "EpollSelector.select"),
    ("write to a child's stdin (syscall, wakes the child)", "_UnixWritePipeTransport.write"),
    ("write to the client's socket (syscall, wakes the client)", "_SelectorSocketTransport.write"),
)
_FRAME_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("logging (access log, child stderr lines)", "logging/"),
    ("logging (access log, child stderr lines)", "AccessLogMiddleware._log"),
    ("JSON encode and decode", "(json/"),
    ("uvicorn and h11 (HTTP parsing, framing)", "h11"),
    ("anyio (task groups, cancel scopes, memory streams, locks)", "anyio/"),
    ("starlette (routing, middleware, Request, Headers, Response)", "starlette/"),
    ("asyncio (tasks, futures, transports)", "asyncio/tasks.py"),
    ("asyncio (tasks, futures, transports)", "asyncio/futures.py"),
    ("asyncio (tasks, futures, transports)", "asyncio/locks.py"),
    ("asyncio (tasks, futures, transports)", "asyncio/selector_events.py"),
    ("asyncio (tasks, futures, transports)", "asyncio/unix_events.py"),
    ("asyncio (tasks, futures, transports)", "asyncio/streams.py"),
    ("mcp_front's own code", "mcp_front/"),
    ("event loop dispatch", "asyncio/"),
)
_LINE_NUMBER = re.compile(r":\d+\)")


@dataclass(frozen=True, slots=True)
class Profile:
    samples: int
    components: list[tuple[str, int]]
    own_functions: list[tuple[str, int]]
    """mcp_front functions by samples with them as the innermost mcp_front frame."""


Components = tuple[tuple[str, str], ...]
"""(name, pattern) pairs: a stack belongs to the first whose pattern is in its frame."""


def analyse(
    collapsed: Path,
    top: int = 12,
    *,
    leaf_components: Components | None = None,
    frame_components: Components | None = None,
) -> Profile:
    """Summarise py-spy's collapsed stacks (`-f raw`): by component (the innermost frame
    matching `leaf_components`, else the innermost matching `frame_components`)."""
    leaves = _LEAF_COMPONENTS if leaf_components is None else leaf_components
    framed = _FRAME_COMPONENTS if frame_components is None else frame_components
    components: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        components[_component(frames, leaves, framed)] += count
        inner = [frame for frame in frames if "mcp_front/" in frame and "mcp_front/cli.py" not in frame]
        if inner:
            own[inner[-1]] += count
    return Profile(total, components.most_common(), own.most_common(top))


def _component(frames: list[str], leaves: Components, framed: Components) -> str:
    for name, pattern in leaves:
        if pattern in frames[-1]:
            return name
    for frame in reversed(frames):
        for name, pattern in framed:
            if pattern in frame:
                return name
    return "other"


def _print_profile(title: str, result: LoadResult, profile: Profile) -> None:
    print(
        f"\n## {title}: p50 {result.p50_ms:.3f} ms, {result.calls_per_second:.0f} calls/s (while sampled)\n"
    )
    print(f"{profile.samples} samples at {SAMPLE_RATE} Hz; by component (innermost match):\n")
    for name, count in profile.components:
        print(f"- {100 * count / profile.samples:5.1f}%  {name}")
    print("\nmcp_front functions most often innermost on the stack (children included):\n")
    for name, count in profile.own_functions:
        print(f"- {100 * count / profile.samples:5.1f}%  {name}")


async def _profile_load(
    server: ServerProcess, spec: targets.ServerSpec, py_spy: str, concurrency: int, calls: int
) -> tuple[LoadResult, Path, Path]:
    collapsed = RESULTS_DIR / f"gateway-c{concurrency}.txt"
    flame = RESULTS_DIR / f"gateway-c{concurrency}.svg"
    result: LoadResult | None = None
    async with clients.new_http_client(16) as http:
        factory = clients.raw_http_factory(http, spec.url, spec.headers)
        await run_load(factory, LoadSpec(max(100, calls // 10), concurrency, 20, 30.0))
        for output, fmt in ((collapsed, "raw"), (flame, "flamegraph")):
            command = [py_spy, "record", "--pid", str(server.pid), "--rate", str(SAMPLE_RATE)]
            command += ["--format", fmt, "--output", str(output), "--nonblocking"]
            recorder = await anyio.open_process(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await anyio.sleep(0.5)
                sample = await run_load(factory, LoadSpec(calls // 2, concurrency, 5, 60.0))
            finally:
                recorder.send_signal(signal.SIGINT)  # py-spy writes its output and exits
                with anyio.move_on_after(PY_SPY_TIMEOUT):
                    await recorder.wait()
                if recorder.returncode is None:
                    recorder.kill()
                await recorder.aclose()
            if fmt == "raw":
                result = LoadResult.merge(concurrency, [sample])
    if result is None or not collapsed.exists():
        raise BenchError("py-spy wrote no profile; it needs ptrace permission on the gateway")
    return result, collapsed, flame


async def _run(supervisor: ProcessSupervisor, py_spy: str, calls: int) -> None:
    spec = targets.gateway_spec(supervisor.log_dir)(free_port())
    server = await anyio.to_thread.run_sync(
        lambda: supervisor.start_server(spec.name, spec.argv, port=spec.port)
    )
    try:
        for concurrency in (1, 10):
            result, collapsed, flame = await _profile_load(server, spec, py_spy, concurrency, calls)
            _print_profile(f"mcp-front at c={concurrency}", result, analyse(collapsed))
            print(f"\nflame graph: {flame}\nstacks: {collapsed}")
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(supervisor.stop, server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_gateway", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    logs = RESULTS_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    supervisor = ProcessSupervisor(logs)
    try:
        anyio.run(_run, supervisor, py_spy, 2000 if args.quick else 10000)
    except KeyboardInterrupt:
        return 130
    finally:
        with ignoring_interrupts():
            supervisor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where mcp-front spends its time in front of a streamable-HTTP backend: py-spy samples.

    pip install py-spy
    python -m bench.profile_http_gateway            # c=1 and c=10, about 40 seconds
    python -m bench.profile_http_gateway --quick

The streamable-HTTP counterpart of `bench.profile_gateway`: it starts the backend of
`bench.http_backend` and mcp-front in front of it as that benchmark does, drives `echo`
calls through the gateway with the same raw HTTP client, and samples the gateway process
with py-spy while it serves them. For each concurrency it writes a flame graph
(`bench/results/gateway-http-c<N>.svg`) and the raw stacks (`gateway-http-c<N>.txt`), and
prints the share of samples by component and the gateway's own functions that were on
the stack most often. Sampling slows the gateway a little: the latencies printed here are
for orientation, `bench.http_backend` is the measurement.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import anyio

from bench import clients, profile_gateway, targets
from bench.measure import LoadResult, LoadSpec, run_load
from bench.processes import BenchError, ProcessSupervisor, ServerProcess, free_port, ignoring_interrupts
from bench.profile_gateway import (
    _FRAME_COMPONENTS,
    _LEAF_COMPONENTS,
    PY_SPY_TIMEOUT,
    SAMPLE_RATE,
    Profile,
    _print_profile,
)
from bench.runner import RESULTS_DIR

# Before `bench.profile_gateway`'s components: here h11 is the backend client's parser
# (uvicorn parses with httptools), and the client's own frames would otherwise be "other".
_HTTP_FRAME_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("logging (access log, httpx2's request log)", "logging/"),
    ("logging (access log, httpx2's request log)", "AccessLogMiddleware._log"),
    ("the HTTP client to the backend (httpx2, httpcore2, h11)", "httpx2/"),
    ("the HTTP client to the backend (httpx2, httpcore2, h11)", "httpcore2/"),
    ("the HTTP client to the backend (httpx2, httpcore2, h11)", "h11/"),
    ("uvicorn (httptools parsing, framing)", "uvicorn/"),
    ("audit log", "mcp_front/audit.py"),
    *_FRAME_COMPONENTS,
)
_HTTP_LEAF_COMPONENTS: tuple[tuple[str, str], ...] = (
    *_LEAF_COMPONENTS,
    ("the event loop itself (uvloop: epoll, transports, callbacks)", "Runner.run (asyncio/runners.py)"),
)


def analyse(collapsed: Path, top: int = 12) -> Profile:
    """Summarise py-spy's collapsed stacks (`-f raw`) by the components of this path."""
    return profile_gateway.analyse(
        collapsed, top, leaf_components=_HTTP_LEAF_COMPONENTS, frame_components=_HTTP_FRAME_COMPONENTS
    )


async def _profile_load(
    server: ServerProcess, spec: targets.ServerSpec, py_spy: str, concurrency: int, calls: int
) -> tuple[LoadResult, Path, Path]:
    collapsed = RESULTS_DIR / f"gateway-http-c{concurrency}.txt"
    flame = RESULTS_DIR / f"gateway-http-c{concurrency}.svg"
    result: LoadResult | None = None
    async with clients.new_http_client(16) as http:
        factory = clients.raw_http_factory(http, spec.url, spec.headers)
        await run_load(factory, LoadSpec(max(100, calls // 10), concurrency, 20, 30.0))
        for output, fmt in ((collapsed, "raw"), (flame, "flamegraph")):
            command = [py_spy, "record", "--pid", str(server.pid), "--rate", str(SAMPLE_RATE)]
            command += ["--format", fmt, "--output", str(output), "--nonblocking"]
            recorder = await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def _start(supervisor: ProcessSupervisor, spec: targets.ServerSpec) -> ServerProcess:
    return supervisor.start_server(spec.name, spec.argv, port=spec.port, cwd=spec.cwd)


async def _run(supervisor: ProcessSupervisor, py_spy: str, calls: int) -> None:
    backend_spec = targets.http_backend_spec()(free_port())
    backend = await anyio.to_thread.run_sync(_start, supervisor, backend_spec)
    spec = targets.gateway_http_spec(supervisor.log_dir, backend_spec.url)(free_port())
    server = await anyio.to_thread.run_sync(_start, supervisor, spec)
    try:
        for concurrency in (1, 10):
            result, collapsed, flame = await _profile_load(server, spec, py_spy, concurrency, calls)
            _print_profile(
                f"mcp-front (streamable-HTTP backend) at c={concurrency}", result, analyse(collapsed)
            )
            print(f"\nflame graph: {flame}\nstacks: {collapsed}")
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(supervisor.stop, server)
            await anyio.to_thread.run_sync(supervisor.stop, backend)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_http_gateway", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    logs = RESULTS_DIR / "logs-http-backend"
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

"""`mcp-front` as the documentation's shell blocks meet it: `serve` returns once it has served.

A block like ``mcp-front serve --config config.json`` would run until stopped. Under this
stand-in it starts the real gateway on a free loopback port (the block's own port may be
taken on a shared machine), waits until ``/health`` under the configured base path answers
200, stops it with SIGTERM, and exits 0 only if the gateway both got ready and shut down
cleanly. Every other command is the real CLI, unchanged.

Run as ``python -m tests.support.serve_briefly ARGS...`` (a shim named ``mcp-front`` on
``PATH`` does that).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from mcp_front.cli import _accept_go_flags
from mcp_front.config import ConfigError, load_config
from tests.support.net import free_port

READY_WITHIN_SECONDS = 90.0
STOPPED_WITHIN_SECONDS = 30.0


def main(argv: list[str]) -> int:
    arguments = _accept_go_flags(argv)
    real_cli = [sys.executable, "-m", "mcp_front.cli"]
    if not arguments or arguments[0] != "serve" or "-h" in arguments or "--help" in arguments:
        return subprocess.call([*real_cli, *argv])
    port = free_port()
    command = [*real_cli, *_on_port(arguments, port)]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            ready = _wait_until_healthy(process, f"http://127.0.0.1:{port}{_base_path(arguments)}/health")
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOPPED_WITHIN_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        output.seek(0)
        log = output.read().decode(errors="replace")
    shown = " ".join(["mcp-front", *argv])
    if ready is not None:
        print(f"{shown}: {ready}\n{log}", file=sys.stderr)
        return 1
    if process.returncode != 0:
        print(f"{shown}: exited {process.returncode} when stopped\n{log}", file=sys.stderr)
        return 1
    print(f"{shown}: ready on port {port}, then stopped")
    return 0


def _on_port(arguments: list[str], port: int) -> list[str]:
    """The same arguments with `--port` set to `port` (replaced, or added)."""
    out: list[str] = []
    skip = False
    for argument in arguments:
        if skip:
            skip = False
        elif argument == "--port":
            skip = True
        elif not argument.startswith("--port="):
            out.append(argument)
    return [*out, "--port", str(port)]


def _base_path(arguments: list[str]) -> str:
    """Where the gateway serves `/health`: below `proxy.baseURL`'s path."""
    config_path = next(
        (arguments[i + 1] for i, arg in enumerate(arguments[:-1]) if arg == "--config"),
        next((arg.partition("=")[2] for arg in arguments if arg.startswith("--config=")), None),
    )
    if config_path is None:
        return ""
    try:
        return load_config(Path(config_path)).proxy.base_path
    except ConfigError:
        return ""  # the gateway reports it itself and exits


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str) -> str | None:
    """None once `url` answers 200; otherwise what went wrong."""
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited {process.returncode} before it was ready"
        try:
            if httpx2.get(url, timeout=2.0).status_code == 200:
                return None
        except httpx2.HTTPError:
            pass
        time.sleep(0.1)
    return f"{url} did not answer 200 within {READY_WITHIN_SECONDS:.0f} s"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

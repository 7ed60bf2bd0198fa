"""`mcp-front serve` as a real process on a loopback port."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from tests.servers.conformance import ServerProcess, running_server
from tests.support.net import free_port


def write_config(directory: Path, servers: dict[str, Any], port: int, **proxy: Any) -> Path:
    config = {
        "proxy": {"baseURL": f"http://127.0.0.1:{port}", "addr": f"127.0.0.1:{port}", **proxy},
        "mcpServers": servers,
    }
    path = directory / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@contextmanager
def gateway_process(
    directory: Path,
    servers: dict[str, Any],
    *,
    cwd: Path | None = None,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    **proxy: Any,
) -> Iterator[ServerProcess]:
    """`mcp-front serve --config …` on a free port; `url` is the gateway's base URL."""
    with gateway_process_on(
        free_port(), directory, servers, cwd=cwd, extra_args=extra_args, env=env, **proxy
    ) as server:
        yield server


@contextmanager
def gateway_process_on(
    port: int,
    directory: Path,
    servers: dict[str, Any],
    *,
    cwd: Path | None = None,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    **proxy: Any,
) -> Iterator[ServerProcess]:
    """The same on a port chosen beforehand, for configs that must name their own URL."""
    config = write_config(directory, servers, port, **proxy)
    command = [sys.executable, "-m", "mcp_front.cli", "serve", "--config", str(config), *extra_args]
    kwargs: dict[str, Any] = {"log_path": directory / "gateway.log", "env": env}
    if cwd is not None:
        kwargs["cwd"] = cwd
    with running_server(command, port=port, url=f"http://127.0.0.1:{port}", **kwargs) as server:
        yield server


def survivors(processes: Sequence[psutil.Process]) -> list[int]:
    """The pids of `processes` still running; a zombie has exited all the same."""
    found = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return bool(survivors([psutil.Process(pid)]))
    except psutil.NoSuchProcess:
        return False

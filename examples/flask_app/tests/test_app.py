"""The example as its README runs it: `python app.py` serving on a loopback port, the
Flask route (through the WSGI bridge) and the mounted gateway side by side, and every
stdio process the gateway started gone once uvicorn stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import psutil
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

APP_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = APP_DIR.parent.parent
TOKEN = "dev-token-123"  # the quickstart's
STARTUP_SECONDS = 60.0
EXIT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = dict(os.environ)
    # The quickstart starts its demo server with `python3`: this interpreter.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    log = (tmp_path / "uvicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(APP_DIR / "app.py")],
        cwd=REPO_ROOT,  # the quickstart's demo server path is relative to the repository
        env={**env, "PORT": str(port)},
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "uvicorn.log").read_text()
            assert time.monotonic() < deadline, "uvicorn did not start listening"
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


@pytest.mark.anyio
async def test_the_host_route_and_the_gateway_answer_and_stop_together(
    host: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = host
    async with httpx2.AsyncClient(base_url=url, timeout=60) as http:
        assert (await http.get("/app/hello")).json() == {"app": "flask", "gateway": "/"}
        refused = await http.post("/demo/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert refused.status_code == 401
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http,
        Client(streamable_http_client(f"{url}/demo/mcp", http_client=http)) as client,
    ):
        result = await client.call_tool("whoami", {})
        assert result.content[0].text == "dev@example.com"  # type: ignore[union-attr]
        children = psutil.Process(process.pid).children(recursive=True)
        assert children, "the user's demo server runs as a child of the host"
    process.send_signal(signal.SIGTERM)
    with anyio.fail_after(EXIT_SECONDS):
        while process.poll() is None:
            await anyio.sleep(0.1)
    # uvicorn shuts down gracefully, then ends by the signal it was sent.
    assert process.returncode in (0, -signal.SIGTERM)
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

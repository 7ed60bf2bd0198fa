"""The gateway embedded in a host application: the Starlette and FastAPI examples, each
run as a real process the way its docs say (`python app.py`, serving with uvicorn through
`mcp_front.serving.serve`). The host's own route and the mounted gateway answer side by
side, at the root or under the sub-path of `proxy.baseURL`; stopping the host leaves its
lifespan, which must stop every stdio process the gateway started.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import psutil
import pytest

from tests.servers.conformance import REPO_ROOT, ServerProcess, running_server
from tests.support.clients import Transport, connect, text_of
from tests.support.gateway import UNSANDBOXED, bearer, stdio_service
from tests.support.net import free_port
from tests.support.process import survivors
from tests.support.raw import RawSession

pytestmark = pytest.mark.e2e

TOKEN = "embedded-token"
USER = "host-user@example.com"
GRACEFUL_SHUTDOWN_SECONDS = 5
"""How long `serve` lets open event streams delay the host's shutdown."""
EXIT_TIMEOUT = 15.0


@dataclass(frozen=True)
class Example:
    name: str
    script: Path
    signs_users_in: bool = False
    """Hands the gateway an identity provider of its own, so its configuration needs `proxy.auth`."""


STARLETTE = Example("starlette", REPO_ROOT / "examples" / "starlette_app.py")
EXAMPLES = [
    STARLETTE,
    Example("fastapi", REPO_ROOT / "examples" / "fastapi_app" / "app.py", signs_users_in=True),
]
MOUNTS = ["", "/mcp-gateway"]


@dataclass
class HostApp:
    server: ServerProcess
    mount: str

    @property
    def gateway_url(self) -> str:
        return f"{self.server.url}{self.mount}"


def write_config(directory: Path, port: int, mount: str, *, with_auth: bool) -> Path:
    base_url = f"http://127.0.0.1:{port}{mount}"
    proxy: dict[str, object] = {"baseURL": base_url, "addr": f"127.0.0.1:{port}"}
    if with_auth:
        # Signing in is the example's own; the probe service also takes the static token.
        proxy["auth"] = {
            "kind": "oauth",
            "issuer": base_url,
            "allowedDomains": ["example.com"],
            "allowAnyRedirectUriHost": True,
            "storage": "memory",
            "encryptionKey": "k" * 32,
        }
    config = {
        "proxy": proxy,
        "mcpServers": {"probe": stdio_service(serviceAuths=[bearer(TOKEN, user=USER)], sandbox=UNSANDBOXED)},
    }
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


@contextmanager
def host_app(example: Example, directory: Path, mount: str | None) -> Iterator[HostApp]:
    """`example` served as its docs say on a free loopback port, with the probe service mounted at `mount`.

    With `mount` None, the example serves its default configuration at "/".
    """
    port = free_port()
    env = dict(os.environ)
    # The quickstart runs its demo server with `python3`: make that this interpreter (3.11+).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("MCP_FRONT_CONFIG", None)
    env["PORT"] = str(port)
    if mount is not None:
        env["MCP_FRONT_CONFIG"] = str(write_config(directory, port, mount, with_auth=example.signs_users_in))
    if example.signs_users_in:
        (directory / "users.json").write_text('{"users": []}')
        env["USERS_FILE"] = str(directory / "users.json")
    with running_server(
        [sys.executable, str(example.script)],
        port=port,
        url=f"http://127.0.0.1:{port}",
        env=env,
        log_path=directory / f"{example.name}.log",
    ) as server:
        yield HostApp(server, mount or "")


async def sse_endpoint(http: httpx2.AsyncClient, path: str) -> str:
    """The URL in the first `endpoint` event of the SSE stream at `path`."""
    with anyio.fail_after(10):
        async with http.stream("GET", path, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status_code == 200
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:") and event == "endpoint":
                    return line.removeprefix("data:").strip()
    raise AssertionError(f"{path} ended without an endpoint event")


@pytest.mark.parametrize("mount", MOUNTS, ids=["at-root", "under-sub-path"])
@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
async def test_host_route_and_gateway_answer_side_by_side(
    example: Example, mount: str, tmp_path: Path
) -> None:
    with host_app(example, tmp_path, mount) as host:
        async with httpx2.AsyncClient(base_url=host.server.url) as http:
            hello = await http.get("/hello")
            assert hello.status_code == 200
            assert hello.json() == {"app": "host", "gateway": mount or "/"}
            health = await http.get(f"{mount}/health")
            assert health.status_code == 200
            assert health.json() == {"status": "ok"}
            unauthenticated = await http.post(f"{mount}/probe/mcp", json={})
            assert unauthenticated.status_code == 401
            if mount:
                # Outside the mount, the host answers, not the gateway.
                assert (await http.get("/probe/mcp")).status_code == 404
            # The SSE transport tells clients where to post: a URL under the mount.
            assert (await sse_endpoint(http, f"{mount}/probe/sse")).startswith(
                f"{mount}/probe/message?sessionId="
            )

        transports: list[tuple[Transport, str]] = [("streamable-http", "mcp"), ("sse", "sse")]
        for transport, endpoint in transports:
            url = f"{host.gateway_url}/probe/{endpoint}"
            async with connect(url, token=TOKEN, transport=transport) as client:
                assert "echo" in {tool.name for tool in (await client.list_tools()).tools}
                result = await client.call_tool(
                    "echo", {"text": f"hosted by {example.name} over {transport}"}
                )
                assert text_of(result) == f"hosted by {example.name} over {transport}"


@pytest.mark.parametrize("mount", MOUNTS, ids=["at-root", "under-sub-path"])
@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
async def test_leaving_the_host_lifespan_stops_the_gateways_processes(
    example: Example, mount: str, tmp_path: Path
) -> None:
    with host_app(example, tmp_path, mount) as host:
        process = host.server.process
        pids: list[int] = []
        # Sessions left open on purpose: their processes are running when the host stops.
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for _ in range(2):
                session = await RawSession.open(http, f"{host.gateway_url}/probe/mcp")
                pids.append(int(await session.call_tool_text("pid", {})))
        # And one client still connected, its event stream open, when the signal comes.
        async with connect(f"{host.gateway_url}/probe/sse", token=TOKEN, transport="sse") as client:
            pids.append(int(text_of(await client.call_tool("pid", {}))))
            children = psutil.Process(process.pid).children(recursive=True)
            assert set(pids) <= {child.pid for child in children}
            assert len(survivors(children)) == len(children) >= 3

            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(GRACEFUL_SHUTDOWN_SECONDS + EXIT_TIMEOUT):
                while process.poll() is None:
                    await anyio.sleep(0.05)
        log = host.server.log()
        assert survivors(children) == [], log
        assert "Application shutdown complete" in log


async def test_the_starlette_example_serves_the_quickstart_by_default(tmp_path: Path) -> None:
    # The FastAPI example serves a configuration of its own; its tests run it.
    with host_app(STARLETTE, tmp_path, None) as host:
        async with connect(f"{host.server.url}/demo/mcp", token="dev-token-123") as client:
            result = await client.call_tool("whoami", {})
            assert not result.is_error, host.server.log()
            assert "dev@example.com" in text_of(result)

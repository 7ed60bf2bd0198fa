"""A real gateway on a loopback port, run inside the test's event loop.

Tests that need to look inside (the process pool, the session registry) use this;
tests of the command line start `mcp-front serve` as a subprocess instead.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from mcp_front import Gateway, create_app
from tests.support.net import free_port, serving

SERVERS = Path(__file__).resolve().parent.parent / "servers"


def stdio_service(script: str = "probe_server.py", **extra: Any) -> dict[str, Any]:
    """Config of a stdio service running one of the test servers with this interpreter."""
    return {"transportType": "stdio", "command": sys.executable, "args": [str(SERVERS / script)], **extra}


UNSANDBOXED: dict[str, Any] = {"enabled": False}
"""`sandbox` settings for tests that look at a child's host process id, which a sandbox hides
(inside, the child is process 2 of a namespace of its own)."""


def bearer(*tokens: str, user: str | None = None) -> dict[str, Any]:
    auth: dict[str, Any] = {"type": "bearer", "tokens": list(tokens)}
    if user is not None:
        auth["user"] = user
    return auth


@dataclass
class RunningGateway:
    url: str
    app: Starlette

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway

    def service_url(self, service: str, endpoint: str = "mcp") -> str:
        return f"{self.url}/{service}/{endpoint}"


@contextlib.asynccontextmanager
async def running_gateway(
    servers: dict[str, Any],
    *,
    proxy: dict[str, Any] | None = None,
    ping_interval: float = 15.0,
    port: int | None = None,
    **app_options: Any,
) -> AsyncIterator[RunningGateway]:
    """`app_options` go to `create_app` (a `store`, an `identity_provider`)."""
    port = port or free_port()
    proxy_config = {"baseURL": f"http://127.0.0.1:{port}", "addr": f"127.0.0.1:{port}", **(proxy or {})}
    app = create_app(
        {"proxy": proxy_config, "mcpServers": servers}, ping_interval=ping_interval, **app_options
    )
    async with serving(app, port):
        base_path = app.state.gateway.config.proxy.base_path
        yield RunningGateway(f"http://127.0.0.1:{port}{base_path}", app)

"""`@modelcontextprotocol/server-everything` (npm, pinned in tests/node) as an HTTP MCP backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from tests.servers.conformance import (
    NODE_BIN_DIR,
    NODE_MODULES,
    ServerProcess,
    node_environment,
    require_node_tools,
    running_server,
)
from tests.support.net import free_port

EVERYTHING = NODE_MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
ENDPOINT = {"sse": "/sse", "streamableHttp": "/mcp"}


@contextmanager
def everything_server(mode: Literal["sse", "streamableHttp"], log_path: Path) -> Iterator[ServerProcess]:
    """The server on a free loopback port; `url` is its SSE or streamable-HTTP endpoint."""
    require_node_tools()
    port = free_port()
    with running_server(
        [str(NODE_BIN_DIR / "node"), str(EVERYTHING), mode],
        port=port,
        url=f"http://127.0.0.1:{port}{ENDPOINT[mode]}",
        env=node_environment({"PORT": str(port)}),
        log_path=log_path,
    ) as server:
        yield server


@contextmanager
def everything_backends(log_dir: Path) -> Iterator[dict[str, str]]:
    """The server as an SSE and as a streamable-HTTP backend: the URL of each, by the
    gateway's `transportType`."""
    with (
        everything_server("sse", log_dir / "sse.log") as sse,
        everything_server("streamableHttp", log_dir / "streamable-http.log") as streamable,
    ):
        yield {"sse": sse.url, "streamable-http": streamable.url}

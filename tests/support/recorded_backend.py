"""The probe server as an HTTP backend on a loopback port, recording the headers of every
request it receives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from tests.servers.probe_server import server as probe_server
from tests.support.net import free_port, serving


@dataclass
class Backend:
    url: str
    requests: list[dict[str, str]] = field(default_factory=list)
    """Method, path and headers of every HTTP request the backend received."""

    def headers_of(self, method: str) -> list[dict[str, str]]:
        return [r for r in self.requests if r[":method"] == method]


class RecordHeaders:
    def __init__(self, app: ASGIApp, backend: Backend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.backend.requests.append({":method": scope["method"], ":path": scope["path"], **headers})
        await self.app(scope, receive, send)


@asynccontextmanager
async def running_backend(
    transport: Literal["streamable-http", "sse"] = "streamable-http", *, json_response: bool = False
) -> AsyncIterator[Backend]:
    port = free_port()
    if transport == "sse":
        backend = Backend(url=f"http://127.0.0.1:{port}/sse")
        app = probe_server.sse_app()
    else:
        backend = Backend(url=f"http://127.0.0.1:{port}/mcp")
        app = probe_server.streamable_http_app(json_response=json_response)
    async with serving(RecordHeaders(app, backend), port):
        yield backend

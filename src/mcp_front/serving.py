"""Serving the gateway with uvicorn, as `mcp-front serve` does.

`GatewayServer` is uvicorn's server, stopping a gateway well. `RequestDeadlineProtocol` is
uvicorn's HTTP protocol with one addition: a connection must deliver each complete request
(request line, headers and body) within a deadline, or it is closed. uvicorn itself only
times out a connection that is idle between requests, so a client that opens connections
and sends a few bytes a minute would otherwise hold them, and their memory, forever.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mcp_front.gateway import Gateway

__all__ = ["REQUEST_READ_TIMEOUT", "GatewayServer", "RequestDeadlineProtocol", "uvicorn_config"]

REQUEST_READ_TIMEOUT = 30.0
"""Seconds a connection has to send a whole request, unless the configuration says otherwise."""


class RequestDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection that does not deliver a complete
    request within `request_read_timeout` seconds of connecting or of starting it."""

    request_read_timeout: float = REQUEST_READ_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_deadline()

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        super().on_message_complete()

    def _start_deadline(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_read_timeout, self._too_slow)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def deadline_protocol(timeout: float) -> type[RequestDeadlineProtocol]:
    """`RequestDeadlineProtocol` with a deadline of `timeout` seconds."""
    return type("RequestDeadlineProtocol", (RequestDeadlineProtocol,), {"request_read_timeout": timeout})


def uvicorn_config(
    app: Any, *, host: str, port: int, request_read_timeout: float, **options: Any
) -> uvicorn.Config:
    """How the gateway is served: its own request deadline, no server header, and no
    `X-Forwarded-*` handling by uvicorn (the app believes them from `proxy.trustedProxies`
    only)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=deadline_protocol(request_read_timeout),
        proxy_headers=False,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=5,
        server_header=False,
        **options,
    )


class GatewayServer(uvicorn.Server):
    """uvicorn's server, stopping a gateway well.

    Shutdown begins by ending every session, which ends their open event streams, so
    uvicorn need not wait out its timeout for them. A signal is the normal way to stop,
    so the process exits 0 rather than re-raising it; a second SIGINT forces the exit.
    """

    def __init__(self, gateway: Gateway, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.gateway = gateway

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.gateway.sessions.close_all()
        await super().shutdown(sockets)

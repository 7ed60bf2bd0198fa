"""Serving the gateway with uvicorn, as `mcp-front serve` does.

`GatewayServer` is uvicorn's server, stopping a gateway well. `RequestDeadlineProtocol` is
uvicorn's HTTP protocol with one addition: a connection must deliver each complete request
(request line, headers and body) within a deadline, or it is closed. uvicorn itself only
times out a connection that is idle between requests, so a client that opens connections
and sends a few bytes a minute would otherwise hold them, and their memory, forever.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import socket
from collections import Counter
from types import FrameType
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mcp_front.gateway import Gateway
from mcp_front.rate_limit import address_key

__all__ = ["REQUEST_READ_TIMEOUT", "GatewayServer", "RequestDeadlineProtocol", "uvicorn_config"]

REQUEST_READ_TIMEOUT = 30.0
"""Seconds a connection has to send a whole request, unless the configuration says otherwise."""
MAX_HEAD_BYTES = 64 * 1024
"""Largest request line and headers together."""
MAX_HEADERS = 128
MAX_PENDING_PER_ADDRESS = 64
"""Connections one address may have open without a complete request."""


class RequestDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, bounding what a client can hold before its request is
    complete:

    - a connection must deliver each complete request within `request_read_timeout`
      seconds of connecting or of starting it, or it is closed;
    - a request line and headers larger than `max_head_bytes` (or more than `max_headers`
      header lines) get `431` and the connection is closed, so no one can make the gateway
      buffer headers without end;
    - one address (an IPv4 address, an IPv6 /64) may have at most
      `max_pending_per_address` connections whose request is not complete yet; past that,
      a new connection is closed at once. Connections that have sent their request (an
      event stream, a long tool call) do not count, so a whole company behind one NAT
      address is not limited by it.
    """

    request_read_timeout: float = REQUEST_READ_TIMEOUT
    max_head_bytes: int = MAX_HEAD_BYTES
    max_headers: int = MAX_HEADERS
    max_pending_per_address: int = MAX_PENDING_PER_ADDRESS
    _pending: ClassVar[Counter[str]] = Counter()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._header_count = 0
        self._address = ""
        self._counted = False
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = address_key(self.client[0] if self.client else None)
        self._count_pending()
        if self._pending[self._address] > self.max_pending_per_address:
            self._release_pending()
            transport.close()
            return
        self._start_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self._release_pending()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._header_count = 0
        self._count_pending()
        self._start_deadline()

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_url(self, url: bytes) -> None:
        if self._within_bounds(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._within_bounds(len(name) + len(value)):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        self._release_pending()
        if not self._refused:
            super().on_message_complete()

    def _within_bounds(self, size: int) -> bool:
        """Count `size` more bytes of the request's head; past the bounds, answer 431 and
        close, and let the parser go on with nothing kept (the rest of this read at most)."""
        self._head_bytes += size
        if self._refused or (
            self._head_bytes <= self.max_head_bytes and self._header_count <= self.max_headers
        ):
            return not self._refused
        self._refused = True
        self._cancel_deadline()
        if not self.transport.is_closing():
            self.transport.write(_HEADERS_TOO_LARGE)
            self.transport.close()
        return False

    def _count_pending(self) -> None:
        if not self._counted:
            self._counted = True
            self._pending[self._address] += 1

    def _release_pending(self) -> None:
        if self._counted:
            self._counted = False
            self._pending[self._address] -= 1
            if self._pending[self._address] <= 0:
                del self._pending[self._address]

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


_HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: 83\r\n\r\n"
    b'{"error": "request_headers_too_large", "error_description": "headers over 64 KiB"}\n'
)


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


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (every connection is
    one); the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, 1 << 20) if hard == resource.RLIM_INFINITY else hard
    if soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target

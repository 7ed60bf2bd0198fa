"""uvicorn's HTTP protocol with bounds on what a client can hold before its request is complete.

uvicorn times out a connection only while it is idle between requests, and buffers request
headers without bound, so a client that opens connections and sends a few bytes a minute,
or header lines without end, would hold them and their memory for as long as it likes.
`BoundedRequestProtocol` adds, for every connection:

- a deadline: each request (line, headers and body) must be complete within
  `request_read_timeout` seconds of connecting or of starting it, or the connection is
  closed;
- a bound on the head: a request line and headers over `max_head_bytes` get `431` and the
  connection is closed;
- a bound per address (an IPv4 address, an IPv6 /64): at most `max_pending_per_address`
  connections whose request is not complete yet; past it a new connection is closed at
  once. Connections that have sent their request (an event stream, a long tool call) do
  not count, so a whole company behind one NAT address is not held back by it.

The per-request cost is a few attribute writes: one sweep a second, per event loop, closes
the connections past their deadline, rather than a timer per request.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import Counter
from typing import Any, ClassVar, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mcp_front.rate_limit import address_key

__all__ = [
    "MAX_HEAD_BYTES",
    "MAX_PENDING_PER_ADDRESS",
    "REQUEST_READ_TIMEOUT",
    "BoundedRequestProtocol",
    "bounded_request_protocol",
]

REQUEST_READ_TIMEOUT: Final = 30.0
"""Seconds a connection has to send a whole request, unless the configuration says otherwise."""
MAX_HEAD_BYTES: Final = 64 * 1024
"""Largest request line and headers together."""
MAX_PENDING_PER_ADDRESS: Final = 64
"""Connections one address may have open without a complete request."""
_SWEEP_SECONDS: Final = 1.0

_HEADERS_TOO_LARGE: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: 83\r\n\r\n"
    b'{"error": "request_headers_too_large", "error_description": "headers over 64 KiB"}\n'
)


class _Watch:
    """The unfinished requests of one event loop's connections, and the sweep that ends
    those past their deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.deadlines: dict[BoundedRequestProtocol, float] = {}
        self.pending: Counter[str] = Counter()
        self._sweeping = False

    def track(self, protocol: BoundedRequestProtocol, seconds: float) -> None:
        self.deadlines[protocol] = self.loop.time() + seconds
        if not self._sweeping:
            self._sweeping = True
            self.loop.call_later(_SWEEP_SECONDS, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for protocol, deadline in list(self.deadlines.items()):
            if deadline <= now:
                self.deadlines.pop(protocol, None)
                protocol.too_slow()
        if self.deadlines:
            self.loop.call_later(_SWEEP_SECONDS, self._sweep)
        else:
            self._sweeping = False


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watch] = weakref.WeakKeyDictionary()


def _watch_of(loop: asyncio.AbstractEventLoop) -> _Watch:
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = _Watch(loop)
    return watch


class BoundedRequestProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the bounds this module describes."""

    request_read_timeout: ClassVar[float] = REQUEST_READ_TIMEOUT
    max_head_bytes: ClassVar[int] = MAX_HEAD_BYTES
    max_pending_per_address: ClassVar[int] = MAX_PENDING_PER_ADDRESS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch = _watch_of(self.loop)
        self._address = ""
        self._unfinished = False
        self._head_done = False
        self._head_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = address_key(self.client[0] if self.client else None)
        self._begin()
        if self._watch.pending[self._address] > self.max_pending_per_address:
            self._end()
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if not self._head_done and not self._refused:
            # Only a head still unfinished after this read counts it whole: a body that
            # arrives with its headers is not taken for more headers.
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_done = False
        self._head_bytes = 0
        self._begin()

    def on_headers_complete(self) -> None:
        self._head_done = True
        if not self._refused:
            super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._end()
        if not self._refused:
            super().on_message_complete()

    def too_slow(self) -> None:
        """The request is not complete by its deadline: close the connection."""
        if not self.transport.is_closing():
            self.transport.close()

    def _begin(self) -> None:
        if not self._unfinished:
            self._unfinished = True
            self._watch.pending[self._address] += 1
            self._watch.track(self, self.request_read_timeout)

    def _end(self) -> None:
        if self._unfinished:
            self._unfinished = False
            self._watch.deadlines.pop(self, None)
            pending = self._watch.pending
            pending[self._address] -= 1
            if pending[self._address] <= 0:
                del pending[self._address]

    def _refuse(self) -> None:
        self._refused = True
        self._end()
        if not self.transport.is_closing():
            self.transport.write(_HEADERS_TOO_LARGE)
            self.transport.close()


def bounded_request_protocol(request_read_timeout: float) -> type[BoundedRequestProtocol]:
    """`BoundedRequestProtocol` with a deadline of `request_read_timeout` seconds."""
    return type(
        "BoundedRequestProtocol", (BoundedRequestProtocol,), {"request_read_timeout": request_read_timeout}
    )

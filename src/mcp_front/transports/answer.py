"""How one streamable-HTTP request gets its answer: JSON when it comes alone, an event
stream when the server has more to say first or takes its time.

The common case (one request, one response, nothing in between) runs in the
request's own task, with no extra task, stream or timer: the answer switches to an
event stream only when a related message arrives, when the client prefers one, or
when the gateway-wide `Heartbeat` finds it silent for a ping interval.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.responses import Response
from starlette.types import Message as ASGIMessage
from starlette.types import Scope, Send

from mcp_front.protocol.jsonrpc import Message
from mcp_front.transports import http
from mcp_front.transports.event_log import EventLog, EventStream


class Answer:
    """The response to one request, written to the client exactly once.

    With an `EventLog`, an answer that becomes an event stream is resumable: its events
    carry ids and are kept, so a client whose connection drops gets the rest (the
    response included) on a GET with `Last-Event-ID`. `prime` sends an empty first event,
    so the client has an id to resume from before the server said anything.
    """

    def __init__(
        self, send: Send, headers: dict[str, str], *, log: EventLog | None = None, prime: bool = False
    ) -> None:
        self._send = send
        self.headers = headers
        self.streaming = False
        self.finished = False
        self.last_write = time.monotonic()
        self._lock = anyio.Lock()
        self._log = log
        self._prime = prime
        self._events: EventStream | None = None

    async def related(self, message: Message) -> None:
        """Deliver a server message about this request; it starts the event stream."""
        async with self._lock:
            if self.finished:
                return
            await self._start_stream()
            await self._body(self._event(message))

    async def stream_now(self) -> None:
        async with self._lock:
            await self._start_stream()

    async def ping(self) -> None:
        async with self._lock:
            if self.finished:
                return
            await self._start_stream()
            await self._body(http.PING_EVENT)

    async def finish(self, response: Message | None, scope: Scope) -> None:
        """Send the response (or, for a request the client cancelled, nothing) and end."""
        async with self._lock:
            self.finished = True
            if self.streaming:
                final = self._event(response) if response is not None else b""
                if self._events is not None:
                    self._events.finish()
                with contextlib.suppress(OSError):
                    await self._send({"type": "http.response.body", "body": final, "more_body": False})
            elif response is None:
                await Response(status_code=202)(scope, _no_receive, self._send)
            else:
                await http.json_message(response, self.headers)(scope, _no_receive, self._send)

    async def _start_stream(self) -> None:
        if self.streaming:
            return
        self.streaming = True
        raw_headers = [*http.SSE_HEADERS, *((k.encode(), v.encode()) for k, v in self.headers.items())]
        await self._send({"type": "http.response.start", "status": 200, "headers": raw_headers})
        self.last_write = time.monotonic()
        if self._log is not None:
            self._events = self._log.open()
            if self._prime:
                await self._body(self._events.record(None))

    def _event(self, message: Message) -> bytes:
        return self._events.record(message) if self._events is not None else http.sse_event(message)

    async def _body(self, chunk: bytes) -> None:
        with contextlib.suppress(OSError):
            await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
        self.last_write = time.monotonic()


async def _no_receive() -> ASGIMessage:
    return {"type": "http.disconnect"}


class Heartbeat:
    """Keeps slow answers alive: one task for the whole gateway, not one per request.

    An answer silent for a ping interval is switched to an event stream and sent a
    comment ping, so proxies with idle timeouts do not cut it.
    """

    def __init__(self, interval: float = http.PING_INTERVAL) -> None:
        self.interval = interval
        self._answers: set[Answer] = set()

    @asynccontextmanager
    async def watching(self, answer: Answer) -> AsyncIterator[Answer]:
        self._answers.add(answer)
        try:
            yield answer
        finally:
            self._answers.discard(answer)

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.interval / 4)
            deadline = time.monotonic() - self.interval
            for answer in list(self._answers):
                if answer.last_write <= deadline:
                    # A client that stopped reading must not hold up everyone else's pings.
                    with anyio.move_on_after(1):
                        await answer.ping()

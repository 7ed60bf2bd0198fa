"""The requests in flight on one multiplexed backend session, and where server messages go.

Backends that carry every message of a session on one channel (a stdio pipe, a legacy
SSE stream) answer requests out of order, interleaved with server messages. The gateway
sends each request under an id of its own, so concurrent requests and a replayed
`initialize` never collide, and routes what comes back: an answer to the request that
waits for it, a progress notification to the stream of the request that asked for it,
anything else to the session's sink for unsolicited messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio

from mcp_front.backends.base import BackendError, MessageSink
from mcp_front.protocol import jsonrpc
from mcp_front.protocol.jsonrpc import Message, MessageKind


class Exchange:
    """One request in flight: its answer, or why none will come."""

    __slots__ = ("_done", "backend_id", "channel", "error", "response")

    def __init__(self, backend_id: int, channel: object) -> None:
        self.backend_id = backend_id
        self.channel = channel
        """What the request was sent on, so that losing it fails only its requests."""
        self.response: Message | None = None
        self.error: BackendError | None = None
        self._done = anyio.Event()

    @property
    def settled(self) -> bool:
        return self.response is not None or self.error is not None

    def answer(self, response: Message) -> None:
        if not self.settled:
            self.response = response
            self._done.set()

    def fail(self, error: BackendError) -> None:
        if not self.settled:
            self.error = error
            self._done.set()

    async def outcome(self) -> Message:
        """The answer; `BackendError` if the request failed instead."""
        await self._done.wait()
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


class ExchangeTable:
    def __init__(self, unsolicited: MessageSink, next_id: Callable[[], int]) -> None:
        self._unsolicited = unsolicited
        self._next_id = next_id
        self._exchanges: dict[int, Exchange] = {}
        self._progress: dict[str | int, MessageSink] = {}

    def start(self, channel: object = None) -> Exchange:
        exchange = Exchange(self._next_id(), channel)
        self._exchanges[exchange.backend_id] = exchange
        return exchange

    def finish(self, exchange: Exchange) -> None:
        self._exchanges.pop(exchange.backend_id, None)

    @contextmanager
    def progress_to(self, message: Message, related: MessageSink) -> Iterator[None]:
        """While this block runs, progress for `message`'s token goes to `related`."""
        token = jsonrpc.progress_token(message)
        if token is None:
            yield
            return
        self._progress[token] = related
        try:
            yield
        finally:
            self._progress.pop(token, None)

    async def route(self, message: Message, kind: MessageKind) -> None:
        """Deliver a message from the backend where it belongs."""
        if kind is MessageKind.RESPONSE:
            request_id = message["id"]
            exchange = self._exchanges.get(request_id) if isinstance(request_id, int) else None
            if exchange is not None:
                exchange.answer(message)
            return
        token = jsonrpc.progress_token(message) if kind is MessageKind.NOTIFICATION else None
        sink = self._progress.get(token, self._unsolicited) if token is not None else self._unsolicited
        await sink(message)

    def fail_all(self, error: BackendError, *, channel: object = None) -> None:
        """Fail the requests waiting for an answer (only those sent on `channel`, if given)."""
        for exchange in list(self._exchanges.values()):
            if channel is None or exchange.channel is channel:
                exchange.fail(error)

"""Resumable event streams: what a session's streams sent recently, for a client that lost
its connection and comes back with `Last-Event-ID`.

Every event the gateway writes on a session's event streams carries an id
`<stream>/<n>`. A dropped connection is not a cancellation (the request goes on), so its
later events, the final response included, are kept here; a GET with `Last-Event-ID`
receives the events of that stream it missed, then the rest as they come. Memory is
bounded per stream and per session: a client that comes back too late gets what is
left, which the protocol allows.
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass, field
from typing import Final

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from mcp_front.transports import jsonrpc
from mcp_front.transports.jsonrpc import Message

MAX_EVENTS_PER_STREAM: Final = 256
MAX_STREAMS_PER_SESSION: Final = 32
MAX_BYTES_PER_SESSION: Final = 4 * 1024 * 1024
"""Past it, the oldest events of the session go first (a stream keeps at least its last)."""


def encode_event(event_id: str, message: Message | None) -> bytes:
    """An event with its id; without a message, the empty event that only primes the id."""
    data = jsonrpc.encode(message) if message is not None else b""
    head = b"id: " + event_id.encode() + b"\n"
    if message is None:
        return head + b"data: \n\n"
    return head + b"event: message\ndata: " + data + b"\n\n"


@dataclass(eq=False)
class EventStream:
    """One event stream of a session: a request's answer, or the standalone GET stream."""

    log: EventLog
    number: int
    standalone: bool
    events: collections.deque[tuple[int, bytes]] = field(default_factory=collections.deque)
    finished: anyio.Event = field(default_factory=anyio.Event)
    size: int = 0
    evicted: bool = False
    """Forgotten by the log to stay in its bounds: it still carries events live, keeps none."""
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _listener: MemoryObjectSendStream[bytes] | None = None

    def record(self, message: Message | None) -> bytes:
        """Give the message its id, keep the event for replay, and return it encoded."""
        number = next(self._sequence)
        event = encode_event(f"{self.number}/{number}", message)
        if self.evicted:
            self._deliver(event)
            return event
        self.events.append((number, event))
        self.size += len(event)
        self.log.grew(len(event), self)
        if len(self.events) > MAX_EVENTS_PER_STREAM:
            self.drop_oldest()
        self._deliver(event)
        return event

    def _deliver(self, event: bytes) -> None:
        if self._listener is not None:
            try:
                self._listener.send_nowait(event)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                # A resumed client that stopped reading: it can resume again from the log.
                self.detach()

    def after(self, number: int) -> list[bytes]:
        return [event for seq, event in self.events if seq > number]

    def attach(self, listener: MemoryObjectSendStream[bytes]) -> None:
        """Send this stream's new events to a client that resumed it."""
        self.detach()
        self._listener = listener

    def detach(self, listener: MemoryObjectSendStream[bytes] | None = None) -> None:
        """Stop sending to the resumed client (only to `listener`, if given: a later
        resume may have replaced it)."""
        if self._listener is not None and (listener is None or listener is self._listener):
            self._listener.close()
            self._listener = None

    def finish(self) -> None:
        self.finished.set()
        self.detach()

    def drop_oldest(self) -> None:
        _, event = self.events.popleft()
        self.size -= len(event)
        self.log.grew(-len(event), self)


class EventLog:
    """The recent event streams of one session."""

    def __init__(self) -> None:
        self._streams: collections.OrderedDict[int, EventStream] = collections.OrderedDict()
        self._numbers = itertools.count(1)
        self._bytes = 0

    def open(self, *, standalone: bool = False) -> EventStream:
        stream = EventStream(self, next(self._numbers), standalone)
        self._streams[stream.number] = stream
        while len(self._streams) > MAX_STREAMS_PER_SESSION:
            self._forget_oldest()
        return stream

    def find(self, last_event_id: str) -> tuple[EventStream, int] | None:
        """The stream an event id belongs to and the event's number in it."""
        stream_part, slash, number_part = last_event_id.partition("/")
        if not slash or len(last_event_id) > 40 or not last_event_id.isascii():
            return None
        if not stream_part.isdigit() or not number_part.isdigit():
            return None
        stream = self._streams.get(int(stream_part))
        return (stream, int(number_part)) if stream is not None else None

    def grew(self, size: int, recording: EventStream) -> None:
        self._bytes += size
        if size <= 0:
            return
        # Oldest streams first, oldest events first; the event just recorded stays.
        for stream in list(self._streams.values()):
            keep = 1 if stream is recording else 0
            while self._bytes > MAX_BYTES_PER_SESSION and len(stream.events) > keep:
                stream.drop_oldest()
            if self._bytes <= MAX_BYTES_PER_SESSION:
                return

    def _forget_oldest(self) -> None:
        _, oldest = self._streams.popitem(last=False)
        self._bytes -= oldest.size
        oldest.evicted = True
        oldest.events.clear()
        oldest.size = 0

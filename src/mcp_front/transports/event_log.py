"""Resumable event streams: what a session's streams sent recently, for a client that lost
its connection and comes back with `Last-Event-ID`.

Every event the gateway writes on a session's event streams carries an id
`<stream>/<n>`. A dropped connection is not a cancellation (the request goes on), so its
later events, the final response included, are kept here; a GET with `Last-Event-ID`
receives the events of that stream it missed, then the rest as they come. Memory is
bounded per stream, per session, per principal (all of one caller's sessions together)
and for the whole gateway (`EventBudget`): past a bound the oldest events of the caller
that recorded go first, never another caller's, and past the gateway's bound the event
just recorded is delivered but not kept. A client that comes back too late gets what is
left, which the protocol allows.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from mcp_front.protocol import jsonrpc
from mcp_front.protocol.jsonrpc import Message

MAX_EVENTS_PER_STREAM: Final = 256
MAX_STREAMS_PER_SESSION: Final = 32
MAX_BYTES_PER_SESSION: Final = 4 * 1024 * 1024
"""Past it, the oldest events of the session go first (a stream keeps at least its last)."""
MAX_BYTES_PER_PRINCIPAL: Final = 16 * 1024 * 1024
MAX_BYTES_TOTAL: Final = 256 * 1024 * 1024


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


class EventBudget:
    """What the event logs of all sessions may keep together, and those of one principal."""

    def __init__(self, *, total: int = MAX_BYTES_TOTAL, per_principal: int = MAX_BYTES_PER_PRINCIPAL) -> None:
        self.total = total
        self.per_principal = per_principal
        self.used = 0
        self._logs: dict[str, list[EventLog]] = {}
        self._used_by: collections.Counter[str] = collections.Counter()

    def log(self, owner: str) -> EventLog:
        """A new session's log, for the principal whose key is `owner`."""
        log = EventLog(self, owner)
        self._logs.setdefault(owner, []).append(log)
        return log

    def used_by(self, owner: str) -> int:
        return self._used_by[owner]

    def add(self, owner: str, size: int) -> None:
        """Count `size` more bytes (fewer, when negative) kept for `owner`."""
        self.used += size
        self._used_by[owner] += size

    def exceeded(self, owner: str) -> bool:
        """Whether the gateway's bound, or `owner`'s, is passed."""
        return self.used > self.total or self._used_by[owner] > self.per_principal

    def make_room(self, owner: str, recording: EventStream) -> None:
        """Drop `owner`'s oldest events, oldest session first, until within bounds; the
        event just recorded goes last, and only if the gateway's bound requires it."""
        for log in self._logs.get(owner, []):
            log.drop_oldest_while(lambda: self.exceeded(owner), keep=recording)
            if not self.exceeded(owner):
                return
        while recording.events and self.exceeded(owner):
            recording.drop_oldest()

    def release(self, log: EventLog) -> None:
        """Forget a log whose session ended."""
        logs = self._logs.get(log.owner, [])
        if log in logs:
            logs.remove(log)
        if not logs:
            self._logs.pop(log.owner, None)
            self._used_by.pop(log.owner, None)


class EventLog:
    """The recent event streams of one session."""

    def __init__(self, budget: EventBudget | None = None, owner: str = "") -> None:
        self._streams: collections.OrderedDict[int, EventStream] = collections.OrderedDict()
        self._numbers = itertools.count(1)
        self._bytes = 0
        self.owner = owner
        self._budget = budget if budget is not None else EventBudget()

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
        self._budget.add(self.owner, size)
        if size <= 0:
            return
        self.drop_oldest_while(lambda: self._bytes > MAX_BYTES_PER_SESSION, keep=recording)
        if self._budget.exceeded(self.owner):
            self._budget.make_room(self.owner, recording)

    def drop_oldest_while(self, over: Callable[[], bool], *, keep: EventStream) -> None:
        """Drop events, oldest streams and oldest events first, while `over()`; the last
        event of `keep` (the one just recorded) stays."""
        for stream in list(self._streams.values()):
            least = 1 if stream is keep else 0
            while over() and len(stream.events) > least:
                stream.drop_oldest()
            if not over():
                return

    def close(self) -> None:
        """The session ended: forget every event, and give the memory back to the budget."""
        while self._streams:
            self._forget_oldest()
        self._budget.release(self)

    def _forget_oldest(self) -> None:
        _, oldest = self._streams.popitem(last=False)
        self._bytes -= oldest.size
        self._budget.add(self.owner, -oldest.size)
        oldest.evicted = True
        oldest.events.clear()
        oldest.size = 0

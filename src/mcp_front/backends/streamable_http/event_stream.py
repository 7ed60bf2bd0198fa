"""Server-sent events decoded incrementally from a byte stream, as the HTML standard
defines them: fields `event`, `data`, `id` and `retry`; lines ended by CRLF, LF or CR; an
event dispatched at each blank line. A line, and an event's data, are bounded by
`MAX_LINE`; past it the decoder raises `EventStreamTooLarge`."""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from mcp_front.errors import MCPFrontError


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    """The event's own `id` field, if it had one."""
    retry: int | None = None
    """Milliseconds, if the event set the reconnection time."""


MAX_LINE: Final = 16 * 1024 * 1024
"""Characters of one line, and of one event's data, past which a stream is refused."""
MAX_EVENT_ID: Final = 1024
"""Characters of an event id past which the id is ignored."""


class EventStreamTooLarge(MCPFrontError, ValueError):
    """A line or an event's data outgrew `MAX_LINE`."""


class EventStreamDecoder:
    """Feed it bytes as they arrive; it returns the events they complete."""

    def __init__(self, *, max_line: int | None = None) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max_line = MAX_LINE if max_line is None else max_line
        self._pending: list[str] = []
        """The start of a line whose end has not arrived, in pieces."""
        self._pending_size = 0
        self._skip_lf = False
        self._first = True
        self._reset()

    def _reset(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0
        self._id: str | None = None
        self._retry: int | None = None
        self._has_fields = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        text = self._text.decode(chunk)
        if not text:
            return []
        if self._first:
            self._first = False
            text = text.removeprefix("\ufeff")
        if self._skip_lf and text.startswith("\n"):
            text = text[1:]
        self._skip_lf = False
        events: list[ServerSentEvent] = []
        # Line ends are looked for only in the new text: what is pending holds none.
        start = 0
        length = len(text)
        while True:
            cr = text.find("\r", start)
            lf = text.find("\n", start)
            if cr == -1 and lf == -1:
                break
            end = lf if cr == -1 or (lf != -1 and lf < cr) else cr
            line = text[start:end]
            if self._pending:
                if self._pending_size + len(line) > self._max_line:
                    raise EventStreamTooLarge(
                        f"a line of the event stream is over {self._max_line} characters"
                    )
                line = "".join(self._pending) + line
                self._pending.clear()
                self._pending_size = 0
            if text[end] == "\r":
                if end + 1 < length:
                    start = end + 2 if text[end + 1] == "\n" else end + 1
                else:
                    start = end + 1
                    self._skip_lf = True
            else:
                start = end + 1
            event = self._line(line)
            if event is not None:
                events.append(event)
        if start < length:
            rest = text[start:]
            self._pending_size += len(rest)
            if self._pending_size > self._max_line:
                raise EventStreamTooLarge(f"a line of the event stream is over {self._max_line} characters")
            self._pending.append(rest)
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if len(line) > self._max_line:
            raise EventStreamTooLarge(f"a line of the event stream is over {self._max_line} characters")
        if not line:
            if not self._has_fields:
                return None
            event = ServerSentEvent(self._event or "message", "\n".join(self._data), self._id, self._retry)
            self._reset()
            return event
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._has_fields = True
        if name == "data":
            self._data_size += len(value) + 1
            if self._data_size > self._max_line:
                raise EventStreamTooLarge(f"an event's data is over {self._max_line} characters")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and value.isascii() and value.isprintable() and len(value) <= MAX_EVENT_ID:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit() and len(value) <= 9:
            self._retry = int(value)
        return None


async def events(chunks: AsyncIterator[bytes]) -> AsyncIterator[ServerSentEvent]:
    """The events of a byte stream, as they complete."""
    decoder = EventStreamDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event

"""The server's own stream of a streamable-HTTP backend session: the GET stream on which
the server sends what nobody asked for (notifications, its own requests to the client).

It runs as a task of the forwarder's task group, which every session shares, so nothing
a backend sends may make it raise; it reconnects with backoff and `Last-Event-ID`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import anyio
from anyio.abc import TaskGroup

from mcp_front.backends.base import BackendError, MessageSink
from mcp_front.backends.streamable_http import http11
from mcp_front.backends.streamable_http.channel import HTTPChannel
from mcp_front.backends.streamable_http.event_stream import events
from mcp_front.protocol import headers
from mcp_front.protocol.jsonrpc import MessageKind

logger = logging.getLogger("mcp_front.backends.streamable_http")

OPEN_WAIT: Final = 2.0
"""How long `notifications/initialized` waits for the server's own stream to open."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """How soon a broken stream is reopened: `first`, doubling up to `most` (seconds)."""

    first: float = 0.5
    most: float = 30.0


class ServerStream:
    """The GET stream of one backend session, carried to `deliver`."""

    def __init__(
        self, channel: HTTPChannel, deliver: MessageSink, task_group: TaskGroup, backoff: Backoff
    ) -> None:
        self._channel = channel
        self._deliver = deliver
        self._task_group = task_group
        self._backoff = backoff
        self._scope: anyio.CancelScope | None = None

    async def open(self) -> None:
        """Open the stream, and wait (briefly) until it is open.

        A server sends what it has for the client on that stream, sometimes even what
        concerns a request in flight; opened lazily, it would miss what the client's
        first call makes the server send.
        """
        channel = self._channel
        if channel.closed or channel.session_id is None:
            return
        self.close()
        scope = anyio.CancelScope()
        self._scope = scope
        opened = anyio.Event()
        self._task_group.start_soon(self._listen, scope, channel.session_id, opened)
        with anyio.move_on_after(OPEN_WAIT):
            await opened.wait()

    def close(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None

    async def _listen(self, scope: anyio.CancelScope, session_id: str, opened: anyio.Event) -> None:
        """Carry the server's unsolicited messages, reconnecting with backoff; `opened` is
        set once the stream is open, or could not be."""
        with scope:
            try:
                await self._carry(session_id, opened)
            except Exception as exc:  # a task of the shared task group must never raise
                logger.error(
                    "the event stream of service %s stopped on an unexpected %s",
                    self._channel.service,
                    type(exc).__name__,
                    extra=self._channel.session.log_context,
                )
            finally:
                opened.set()

    async def _carry(self, session_id: str, opened: anyio.Event) -> None:
        channel = self._channel
        delay = self._backoff.first
        last_event_id: str | None = None
        while not channel.closed and channel.session_id == session_id:
            try:
                resume = ((headers.LAST_EVENT_ID, last_event_id),) if last_event_id is not None else ()
                request = await channel.build("GET", extra=resume)
                async with channel.send(request) as response:
                    if response.status_code in (404, 405):
                        return  # no such stream, or the session ended: a request renews it
                    await channel.check_status(response)
                    if response.media_type != "text/event-stream":
                        return
                    opened.set()
                    delay = self._backoff.first
                    async for event in events(response.aiter_bytes()):
                        if event.id:
                            last_event_id = event.id
                        decoded = channel.decoded(event)
                        if decoded is not None and decoded[1] is not MessageKind.RESPONSE:
                            await self._deliver(decoded[0])
            except Exception as exc:
                # Whatever one backend sends must not take down the task group that every
                # session shares. Only the gateway's own errors are known to be free of
                # the URL's secrets; of any other, only the type is logged.
                opened.set()
                if isinstance(exc, BackendError):
                    reason = str(exc)
                elif isinstance(exc, http11.HTTPError):
                    reason = channel.without_secrets(str(exc))
                else:
                    reason = type(exc).__name__
                logger.info(
                    "the event stream of service %s broke (%s); reconnecting in %gs",
                    channel.service,
                    reason,
                    delay,
                    extra=channel.session.log_context,
                )
            await anyio.sleep(delay)
            delay = min(delay * 2, self._backoff.most)

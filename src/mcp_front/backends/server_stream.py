"""The server's own stream of a streamable-HTTP backend session: the GET stream on which
the server sends what nobody asked for (notifications, its own requests to the client).

It runs as a task of the forwarder's task group, which every session shares, so nothing
a backend sends may make it raise; it reconnects with backoff and `Last-Event-ID`. A
companion of `StreamableHTTPUpstream`: it sends through the upstream's own requests.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import anyio

from mcp_front.backends import http11
from mcp_front.backends.base import BackendError
from mcp_front.backends.event_stream import events

if TYPE_CHECKING:
    from mcp_front.backends.streamable_http import StreamableHTTPUpstream

logger = logging.getLogger("mcp_front.backends.streamable_http")

OPEN_WAIT: Final = 2.0
"""How long `notifications/initialized` waits for the server's own stream to open."""


class ServerStream:
    """The GET stream of one backend session."""

    def __init__(self, upstream: StreamableHTTPUpstream) -> None:
        self._upstream = upstream
        self._scope: anyio.CancelScope | None = None

    async def open(self) -> None:
        """Open the stream, and wait (briefly) until it is open.

        A server sends what it has for the client on that stream, sometimes even what
        concerns a request in flight; opened lazily, it would miss what the client's
        first call makes the server send.
        """
        upstream = self._upstream
        if upstream._closed or upstream.session_id is None:
            return
        self.close()
        scope = anyio.CancelScope()
        self._scope = scope
        opened = anyio.Event()
        upstream._forwarder.task_group.start_soon(self._listen, scope, upstream.session_id, opened)
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
                    self._upstream.service,
                    type(exc).__name__,
                    extra=_context(self._upstream),
                )
            finally:
                opened.set()

    async def _carry(self, session_id: str, opened: anyio.Event) -> None:
        upstream = self._upstream
        forwarder = upstream._forwarder
        delay = forwarder.reconnect_delay
        last_event_id: str | None = None
        while not upstream._closed and upstream.session_id == session_id:
            try:
                resume = (("Last-Event-ID", last_event_id),) if last_event_id is not None else ()
                request = await upstream._build("GET", extra=resume)
                async with upstream._send(request) as response:
                    if response.status_code in (404, 405):
                        return  # no such stream, or the session ended: a request renews it
                    await upstream._check_status(response)
                    if response.media_type != "text/event-stream":
                        return
                    opened.set()
                    delay = forwarder.reconnect_delay
                    async for event in events(response.aiter_bytes()):
                        if event.id:
                            last_event_id = event.id
                        message = upstream._decode_event(event)
                        if message is not None and "method" in message:
                            await upstream._unsolicited(message)
            except Exception as exc:
                # Whatever one backend sends must not take down the task group that every
                # session shares. Only the gateway's own errors are known to be free of
                # the URL's secrets; of any other, only the type is logged.
                opened.set()
                if isinstance(exc, BackendError):
                    reason = str(exc)
                elif isinstance(exc, http11.HTTPError):
                    reason = http11.without_url_secrets(str(exc), upstream._url or "")
                else:
                    reason = type(exc).__name__
                logger.info(
                    "the event stream of service %s broke (%s); reconnecting in %gs",
                    upstream.service,
                    reason,
                    delay,
                    extra=_context(upstream),
                )
            await anyio.sleep(delay)
            delay = min(delay * 2, forwarder.max_reconnect_delay)


def _context(upstream: StreamableHTTPUpstream) -> dict[str, str]:
    return {"service": upstream.service, "principal": upstream.principal.display_name}

"""The `Upstream` of a client session on a streamable-HTTP MCP server, and its forwarder.

All sessions of a forwarder share one pool of keep-alive HTTP/1.1 connections
(`http11`, a client lean enough for the hot path of every call). Each
`StreamableHTTPUpstream` talks to its backend through its `HTTPChannel` (the backend's
`Mcp-Session-Id` and negotiated protocol version, the URL and headers rendered for its
principal), renumbers request ids (so concurrent requests and a replayed `initialize`
never collide), streams event-stream answers event by event, and keeps the server's
own GET stream open (`ServerStream`) when the backend offers one.

A backend session that expired (404) is replaced transparently by replaying the
client's `initialize`, and the request is retried once. The service's `timeout` (60 s
when unset) bounds the wait for a request's final response, events included. A POST
event stream the backend closes before answering, after giving event ids, is resumed
with `Last-Event-ID` (a few times in a row at most); one that breaks before any id is
an error for that request. 2026-07-28 requests go down natively (`NativeRequests`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import anyio

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError, MessageSink, configured
from mcp_front.backends.session import BackendSession
from mcp_front.backends.streamable_http import http11
from mcp_front.backends.streamable_http.channel import HTTPChannel, SessionExpired
from mcp_front.backends.streamable_http.event_stream import EventStreamTooLarge, events
from mcp_front.backends.streamable_http.server_stream import Backoff, ServerStream
from mcp_front.backends.streamable_http.v2026_07_28 import NativeRequests
from mcp_front.backends.templating import UserTokenSource
from mcp_front.config import ServerConfig
from mcp_front.lifecycle import TaskGroupOwner
from mcp_front.protocol import headers, jsonrpc, messages
from mcp_front.protocol.jsonrpc import Message, MessageKind
from mcp_front.protocol.revisions import envelope_version

logger = logging.getLogger("mcp_front.backends.streamable_http")

_MAX_RESUMPTIONS: Final = 5
"""Reopenings of a request's stream in a row that bring no new event before giving up."""
_MAX_RETRY_DELAY: Final = 5.0
"""The most a backend's `retry:` field may make a request wait before its stream reopens."""


@dataclass(slots=True)
class _Resumption:
    """Where a request's event stream resumes: its last event id, and how long to wait."""

    last_event_id: str | None = None
    retry: float = 0.0
    attempts: int = 0


class StreamableHTTPUpstream(BackendSession):
    """The `Upstream` of one client session on a streamable-HTTP service."""

    logger = logger

    def __init__(
        self,
        forwarder: StreamableHTTPForwarder,
        service: str,
        server: ServerConfig,
        principal: Principal,
        unsolicited: MessageSink,
    ) -> None:
        super().__init__(service, server, principal, forwarder.user_tokens)
        self._forwarder = forwarder
        self._unsolicited = unsolicited
        self.channel = HTTPChannel(self, forwarder.http)
        self._native = NativeRequests(self.channel)
        self._server_stream = ServerStream(self.channel, unsolicited, forwarder.task_group, forwarder.backoff)
        self._reinitialize_lock = anyio.Lock()

    @property
    def session_id(self) -> str | None:
        """The backend's session id, once `initialize` started one."""
        return self.channel.session_id

    @property
    def protocol_version(self) -> str | None:
        return self.channel.protocol_version

    # -- Upstream -----------------------------------------------------------------------

    async def request(self, message: Message, related: MessageSink) -> Message:
        if self.closed:
            raise self.closed_error()
        if envelope_version(message) is not None:
            # Self-contained 2026-07-28 request: one POST of its own, outside any session.
            return await self._native.request(message, related)
        if message["method"] == "initialize":
            return await self._initialize(message, related)
        generation = self.channel.generation
        try:
            return await self._exchange(message, related)
        except SessionExpired:
            await self._reinitialize(generation)
        try:
            return await self._exchange(message, related)
        except SessionExpired:
            raise BackendError(
                f"service '{self.service}' lost its session again right after it was renewed"
            ) from None

    async def notify(self, message: Message) -> None:
        if self.closed:
            return
        generation = self.channel.generation
        try:
            await self._post_without_answer(message)
        except SessionExpired:
            await self._reinitialize(generation)
            with contextlib.suppress(SessionExpired):
                await self._post_without_answer(message)
        if self.record_notification(message):
            await self._server_stream.open()

    async def respond(self, message: Message) -> None:
        if self.closed:
            return
        try:
            await self._post_without_answer(message)
        except (BackendError, SessionExpired) as exc:
            logger.warning(
                "a response to service %s was not delivered: %s", self.service, exc, extra=self.log_context
            )

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._server_stream.close()
        with anyio.CancelScope(shield=True):
            await self._end_backend_session()
        self._forwarder.forget(self)

    # -- the exchange of one request ----------------------------------------------------

    async def _initialize(self, message: Message, related: MessageSink) -> Message:
        self.channel.session_id = None
        self.channel.protocol_version = None
        response = await self._exchange(message, related, capture_session=True)
        self.record_initialize(message, response)
        return response

    async def _reinitialize(self, generation: int) -> None:
        """Open a new backend session by replaying the client's `initialize`."""
        async with self._reinitialize_lock:
            if self.channel.generation != generation:
                return  # another request renewed the session meanwhile
            if self.initialize_params is None:
                raise BackendError(
                    f"service '{self.service}' does not know this session; initialize first",
                    code=jsonrpc.INVALID_REQUEST,
                )
            logger.info(
                "service %s expired the session of %s; initializing again",
                self.service,
                self.principal.display_name,
                extra=self.log_context,
            )
            self.channel.end_session()
            await self.replay_initialize(
                self._replayed_exchange, self._send_and_listen, occasion="after its session expired"
            )

    async def _replayed_exchange(self, message: Message) -> Message:
        try:
            return await self._exchange(message, self._unsolicited, capture_session=True)
        except SessionExpired:
            return jsonrpc.error_response(message["id"], jsonrpc.INTERNAL_ERROR, "404 for a new session")

    async def _send_and_listen(self, message: Message) -> None:
        await self._post_without_answer(message)
        await self._server_stream.open()

    async def _exchange(
        self, message: Message, related: MessageSink, *, capture_session: bool = False
    ) -> Message:
        """POST one request under a gateway-assigned id and wait for its answer."""
        backend_id = self._forwarder.next_request_id()
        timeout = self.channel.timeout
        try:
            with anyio.fail_after(timeout):
                response = await self._post_request({**message, "id": backend_id}, related, capture_session)
        except (BackendError, SessionExpired):
            raise
        except BaseException as exc:
            # Cancelled, timed out or failed mid-stream: the backend should stop working on it.
            with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                await self._cancel_at_backend(backend_id)
            if isinstance(exc, TimeoutError):
                raise BackendError(
                    f"service '{self.service}' did not answer {message['method']} within {timeout:g}s",
                    code=jsonrpc.REQUEST_TIMEOUT,
                ) from None
            raise
        if capture_session and "result" in response:
            result = response["result"]
            version = result.get("protocolVersion") if isinstance(result, dict) else None
            self.channel.protocol_version = version if isinstance(version, str) else None
        return {**response, "id": message["id"]}

    async def _post_request(self, message: Message, related: MessageSink, capture_session: bool) -> Message:
        channel = self.channel
        request = await channel.build("POST", message)
        async with channel.send(request) as response:
            channel.check_session(request, response)
            await channel.check_status(response)
            if capture_session:
                channel.start_session(response.headers.get(headers.SESSION_ID))
            media_type = response.media_type
            if media_type == "application/json":
                body = await response.aread()
                return self._json_response(body, message["id"])
            if media_type != "text/event-stream":
                if response.status_code == 202:
                    raise BackendError(f"service '{self.service}' accepted the request but sent no answer")
                raise BackendError(
                    f"service '{self.service}' is not an MCP streamable-HTTP server: it answered with "
                    f"content type {media_type or '(none)'}"
                )
            outcome = await self._stream_response(response, message["id"], related, _Resumption())
        while isinstance(outcome, _Resumption):
            outcome = await self._resume(outcome, message["id"], related)
        return outcome

    async def _resume(
        self, resumption: _Resumption, backend_id: int, related: MessageSink
    ) -> Message | _Resumption:
        """Reopen a request's event stream the backend closed before answering (it may,
        to free the connection: the answer then comes on the stream resumed with
        `Last-Event-ID`)."""
        resumption.attempts += 1
        if resumption.attempts > _MAX_RESUMPTIONS:
            raise BackendError(
                f"service '{self.service}' closed its event stream {_MAX_RESUMPTIONS} times before answering"
            )
        await anyio.sleep(resumption.retry)
        request = await self.channel.build(
            "GET", extra=((headers.LAST_EVENT_ID, resumption.last_event_id or ""),)
        )
        async with self.channel.send(request) as response:
            await self.channel.check_status(response)
            if response.media_type != "text/event-stream":
                raise BackendError(f"service '{self.service}' did not resume its event stream")
            return await self._stream_response(response, backend_id, related, resumption)

    def _json_response(self, body: bytes, backend_id: int) -> Message:
        try:
            message = jsonrpc.decode(body)
            kind = jsonrpc.classify(message)
        except ValueError:
            raise BackendError(
                f"service '{self.service}' answered with a body that is not JSON-RPC"
            ) from None
        if kind is not MessageKind.RESPONSE or message["id"] != backend_id:
            raise BackendError(f"service '{self.service}' answered with a message that is not the response")
        assert isinstance(message, dict)
        return message

    async def _stream_response(
        self, response: http11.Response, backend_id: int, related: MessageSink, resumption: _Resumption
    ) -> Message | _Resumption:
        """The response, read from the event stream; or, when the stream ends first after
        giving event ids, where to resume it."""
        try:
            async for event in events(response.aiter_bytes()):
                if event.id:
                    resumption.last_event_id = event.id
                    resumption.attempts = 0
                if event.retry is not None:
                    resumption.retry = min(event.retry / 1000, _MAX_RETRY_DELAY)
                decoded = self.channel.decoded(event)
                if decoded is None:
                    continue
                message, kind = decoded
                if kind is not MessageKind.RESPONSE:
                    await related(message)
                elif message["id"] == backend_id:
                    return message
        except http11.HTTPError as exc:
            if resumption.last_event_id is None:
                raise self.channel.unreachable(exc) from None
        except EventStreamTooLarge as exc:
            raise BackendError(
                f"service '{self.service}' sent an event stream that is too large: {exc}"
            ) from None
        if resumption.last_event_id is None:
            raise BackendError(f"service '{self.service}' closed its event stream before answering")
        return resumption

    async def _post_without_answer(self, message: Message) -> None:
        """POST a notification or a response; the backend acknowledges with 202 or 200."""
        channel = self.channel
        request = await channel.build("POST", message)
        try:
            with anyio.fail_after(channel.timeout):
                async with channel.send(request) as response:
                    channel.check_session(request, response)
                    await channel.check_status(response)
        except TimeoutError:
            raise BackendError(
                f"service '{self.service}' did not accept {message.get('method') or 'a response'} "
                f"within {channel.timeout:g}s",
                code=jsonrpc.REQUEST_TIMEOUT,
            ) from None

    async def _cancel_at_backend(self, backend_id: int) -> None:
        if self.closed:
            return
        with contextlib.suppress(BackendError, SessionExpired):
            await self._post_without_answer(messages.cancelled(backend_id, "the client went away"))

    # -- the end of the session ---------------------------------------------------------

    async def _end_backend_session(self) -> None:
        if self.channel.session_id is None:
            return
        with anyio.move_on_after(self._forwarder.delete_timeout), contextlib.suppress(Exception):
            request = await self.channel.build("DELETE")
            async with self.channel.send(request):
                pass
        self.channel.session_id = None


class StreamableHTTPForwarder(TaskGroupOwner):
    """Opens `StreamableHTTPUpstream`s over one shared pool of backend connections."""

    def __init__(
        self,
        services: Mapping[str, ServerConfig],
        *,
        user_tokens: UserTokenSource | None = None,
        delete_timeout: float = 2.0,
        reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 30.0,
    ) -> None:
        self.services = services
        self.user_tokens = user_tokens
        self.http = http11.BackendHTTP()
        self.delete_timeout = delete_timeout
        self.backoff = Backoff(reconnect_delay, max_reconnect_delay)
        """How the server streams of the sessions reconnect."""
        self._upstreams: set[StreamableHTTPUpstream] = set()
        self._ids = itertools.count(1)

    async def open(self, service: str, principal: Principal, sink: MessageSink) -> StreamableHTTPUpstream:
        """A new session; the backend session starts with the client's `initialize`."""
        server = configured(self.services, service, "forwarder")
        upstream = StreamableHTTPUpstream(self, service, server, principal, sink)
        self._upstreams.add(upstream)
        return upstream

    @property
    def session_count(self) -> int:
        return len(self._upstreams)

    def next_request_id(self) -> int:
        return next(self._ids)

    def forget(self, upstream: StreamableHTTPUpstream) -> None:
        """Drop a session that ended."""
        self._upstreams.discard(upstream)

    async def aclose(self) -> None:
        """End every open backend session (DELETE, best effort) and close the client."""
        async with anyio.create_task_group() as task_group:
            for upstream in list(self._upstreams):
                task_group.start_soon(upstream.aclose)
        await self.http.aclose()

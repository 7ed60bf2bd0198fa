"""A streamable-HTTP MCP server as backend: one backend session per client session.

All sessions of a forwarder share one pool of keep-alive HTTP/1.1 connections
(`backends.http11`, a client lean enough for the hot path of every call).
Each `StreamableHTTPUpstream` holds the backend's `Mcp-Session-Id` and negotiated
protocol version, renumbers request ids (so concurrent requests and a replayed
`initialize` never collide), streams event-stream answers event by event, and keeps a
GET stream open for the server's unsolicited messages when the backend offers one.

Only the service's configured `headers` reach the backend: the client's
`Authorization` and `Cookie` headers never arrive at this layer, so they cannot be
forwarded. A backend session that expired (404) is replaced transparently by replaying
the client's `initialize`, and the request is retried once.

The service's `timeout` (60 s when unset) bounds the wait for a request's final
response, events included; the GET stream lives as long as the session. A POST event
stream that breaks before its response is an error for that request (it is not resumed
with `Last-Event-ID`); the GET stream reconnects with backoff and `Last-Event-ID`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import anyio

from mcp_front.auth.principal import Principal
from mcp_front.backends import http11, streamable_http_modern
from mcp_front.backends.base import BackendError, MessageSink
from mcp_front.backends.event_stream import EventStreamTooLarge, ServerSentEvent, events
from mcp_front.backends.lifecycle import Running
from mcp_front.backends.server_stream import ServerStream
from mcp_front.backends.templating import UserTokenSource, render_value
from mcp_front.config import ServerConfig
from mcp_front.transports import jsonrpc
from mcp_front.transports.jsonrpc import Message, MessageKind

logger = logging.getLogger("mcp_front.backends.streamable_http")

DEFAULT_TIMEOUT: Final = timedelta(seconds=60)
SESSION_HEADER: Final = "mcp-session-id"
PROTOCOL_HEADER: Final = "mcp-protocol-version"
_ACCEPT: Final = "application/json, text/event-stream"
_ERROR_BODY_LIMIT: Final = 4096


_MAX_RESUMPTIONS: Final = 5
"""Reopenings of a request's stream in a row that bring no new event before giving up."""
_MAX_RETRY_DELAY: Final = 5.0
"""The most a backend's `retry:` field may make a request wait before its stream reopens."""


class _SessionExpired(Exception):
    """The backend answered 404 for the session id we sent."""


_MAX_CACHED_HEADS: Final = 16


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    target: http11.Target
    head: bytes
    body: bytes | None


@dataclass(slots=True)
class _Resumption:
    """Where a request's event stream resumes: its last event id, and how long to wait."""

    last_event_id: str | None = None
    retry: float = 0.0
    attempts: int = 0


class StreamableHTTPUpstream:
    """The `Upstream` of one client session on a streamable-HTTP service."""

    def __init__(
        self,
        forwarder: StreamableHTTPForwarder,
        service: str,
        server: ServerConfig,
        principal: Principal,
        unsolicited: MessageSink,
    ) -> None:
        self._forwarder = forwarder
        self.service = service
        self._server = server
        self.principal = principal
        self._unsolicited = unsolicited
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._generation = 0
        self._url: str | None = None
        self._headers: dict[str, str] | None = None
        self._heads: dict[tuple[Any, ...], tuple[http11.Target, bytes]] = {}
        self._initialize_params: dict[str, Any] | None = None
        self._client_initialized = False
        self._reinitialize_lock = anyio.Lock()
        self._server_stream = ServerStream(self)
        self._closed = False

    @property
    def _timeout(self) -> float:
        return (self._server.timeout or DEFAULT_TIMEOUT).total_seconds()

    # -- Upstream -----------------------------------------------------------------------

    async def request(self, message: Message, related: MessageSink) -> Message:
        if self._closed:
            raise BackendError(f"the session with service '{self.service}' is closed")
        if streamable_http_modern.is_modern(message):
            # Self-contained 2026-07-28 request: one POST of its own, outside any session.
            return await streamable_http_modern.request(self, message, related)
        if message["method"] == "initialize":
            return await self._initialize(message, related)
        generation = self._generation
        try:
            return await self._exchange(message, related)
        except _SessionExpired:
            await self._reinitialize(generation)
        try:
            return await self._exchange(message, related)
        except _SessionExpired:
            raise BackendError(
                f"service '{self.service}' lost its session again right after it was renewed"
            ) from None

    async def notify(self, message: Message) -> None:
        if self._closed:
            return
        generation = self._generation
        try:
            await self._post_without_answer(message)
        except _SessionExpired:
            await self._reinitialize(generation)
            with contextlib.suppress(_SessionExpired):
                await self._post_without_answer(message)
        if message["method"] == "notifications/initialized" and not self._client_initialized:
            self._client_initialized = True
            await self._server_stream.open()

    async def respond(self, message: Message) -> None:
        if self._closed:
            return
        try:
            await self._post_without_answer(message)
        except (BackendError, _SessionExpired) as exc:
            logger.warning(
                "a response to service %s was not delivered: %s",
                self.service,
                exc,
                extra={"service": self.service, "principal": self.principal.display_name},
            )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server_stream.close()
        with anyio.CancelScope(shield=True):
            await self._end_backend_session()
        self._forwarder._forget(self)

    # -- the exchange of one request ----------------------------------------------------

    async def _initialize(self, message: Message, related: MessageSink) -> Message:
        self.session_id = None
        self.protocol_version = None
        response = await self._exchange(message, related, capture_session=True)
        if "result" in response:
            params = message.get("params")
            self._initialize_params = params if isinstance(params, dict) else {}
        return response

    async def _reinitialize(self, generation: int) -> None:
        """Open a new backend session by replaying the client's `initialize`."""
        async with self._reinitialize_lock:
            if self._generation != generation:
                return  # another request renewed the session meanwhile
            if self._initialize_params is None:
                raise BackendError(
                    f"service '{self.service}' does not know this session; initialize first",
                    code=jsonrpc.INVALID_REQUEST,
                )
            logger.info(
                "service %s expired the session of %s; initializing again",
                self.service,
                self.principal.display_name,
                extra={"service": self.service, "principal": self.principal.display_name},
            )
            self.session_id = None
            self._url = self._headers = None  # a refreshed user token is picked up
            message = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": self._initialize_params}
            try:
                response = await self._exchange(message, self._unsolicited, capture_session=True)
            except _SessionExpired:
                response = jsonrpc.error_response(0, jsonrpc.INTERNAL_ERROR, "404 for a new session")
            if "result" not in response:
                error = response.get("error")
                detail = error.get("message") if isinstance(error, dict) else None
                raise BackendError(
                    f"service '{self.service}' failed to initialize again after its session expired: "
                    f"{detail or 'no reason given'}"
                )
            if self._client_initialized:
                await self._post_without_answer({"jsonrpc": "2.0", "method": "notifications/initialized"})
                await self._server_stream.open()

    async def _exchange(
        self, message: Message, related: MessageSink, *, capture_session: bool = False
    ) -> Message:
        """POST one request under a gateway-assigned id and wait for its answer."""
        backend_id = self._forwarder.next_request_id()
        try:
            with anyio.fail_after(self._timeout):
                response = await self._post_request({**message, "id": backend_id}, related, capture_session)
        except (BackendError, _SessionExpired):
            raise
        except BaseException as exc:
            # Cancelled, timed out or failed mid-stream: the backend should stop working on it.
            with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                await self._cancel_at_backend(backend_id)
            if isinstance(exc, TimeoutError):
                raise BackendError(
                    f"service '{self.service}' did not answer {message['method']} within {self._timeout:g}s",
                    code=jsonrpc.REQUEST_TIMEOUT,
                ) from None
            raise
        if capture_session and "result" in response:
            result = response["result"]
            version = result.get("protocolVersion") if isinstance(result, dict) else None
            self.protocol_version = version if isinstance(version, str) else None
        return {**response, "id": message["id"]}

    async def _post_request(self, message: Message, related: MessageSink, capture_session: bool) -> Message:
        sent_session = self.session_id
        request = await self._build("POST", message)
        async with self._send(request) as response:
            if sent_session is not None and response.status_code == 404:
                await self._session_expired(sent_session)
            await self._check_status(response)
            if capture_session:
                session_id = response.headers.get(SESSION_HEADER)
                self.session_id = session_id or None
                self._generation += 1
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
        request = await self._build("GET", extra=(("Last-Event-ID", resumption.last_event_id or ""),))
        async with self._send(request) as response:
            await self._check_status(response)
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
                message = self._decode_event(event)
                if message is None:
                    continue
                if "method" not in message:
                    if message.get("id") == backend_id:
                        return message
                    continue
                await related(message)
        except http11.HTTPError as exc:
            if resumption.last_event_id is None:
                raise self._unreachable(exc) from None
        except EventStreamTooLarge as exc:
            raise BackendError(
                f"service '{self.service}' sent an event stream that is too large: {exc}"
            ) from None
        if resumption.last_event_id is None:
            raise BackendError(f"service '{self.service}' closed its event stream before answering")
        return resumption

    def _decode_event(self, event: ServerSentEvent) -> Message | None:
        if event.event != "message" or not event.data:
            return None
        try:
            message = jsonrpc.decode(event.data)
            jsonrpc.classify(message)
        except ValueError:
            logger.warning(
                "service %s sent an event that is not a JSON-RPC message; ignored",
                self.service,
                extra={"service": self.service, "principal": self.principal.display_name},
            )
            return None
        assert isinstance(message, dict)
        return message

    async def _post_without_answer(self, message: Message) -> None:
        """POST a notification or a response; the backend acknowledges with 202 or 200."""
        sent_session = self.session_id
        request = await self._build("POST", message)
        try:
            with anyio.fail_after(self._timeout):
                async with self._send(request) as response:
                    if sent_session is not None and response.status_code == 404:
                        await self._session_expired(sent_session)
                    await self._check_status(response)
        except TimeoutError:
            raise BackendError(
                f"service '{self.service}' did not accept {message.get('method') or 'a response'} "
                f"within {self._timeout:g}s",
                code=jsonrpc.REQUEST_TIMEOUT,
            ) from None

    async def _cancel_at_backend(self, backend_id: int) -> None:
        if self._closed:
            return
        message = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": backend_id, "reason": "the client went away"},
        }
        with contextlib.suppress(BackendError, _SessionExpired):
            await self._post_without_answer(message)

    async def _session_expired(self, sent_session: str) -> None:
        if self.session_id == sent_session:
            self.session_id = None
        raise _SessionExpired

    # -- HTTP ---------------------------------------------------------------------------

    async def _prepare(self) -> tuple[str, dict[str, str]]:
        """The backend's URL and configured headers, rendered for this principal."""
        if self._url is None or self._headers is None:
            user_tokens = self._forwarder.user_tokens
            if self._server.url is None:
                raise BackendError(f"service '{self.service}' has no url to forward to")
            self._url = await render_value(self._server.url, self.principal, self.service, user_tokens)
            self._headers = {
                name: await render_value(value, self.principal, self.service, user_tokens)
                for name, value in self._server.headers.items()
            }
            self._heads.clear()
        return self._url, self._headers

    async def _build(
        self, method: str, message: Message | None = None, *, extra: tuple[tuple[str, str], ...] = ()
    ) -> _Request:
        url, configured = await self._prepare()
        # The head of a request depends only on these, so a session's calls share one.
        key = (method, self.session_id, self.protocol_version, extra)
        prepared = self._heads.get(key)
        if prepared is None:
            try:
                target = http11.Target.parse(url)
                headers = [
                    *configured.items(),
                    ("Accept", "text/event-stream" if method == "GET" else _ACCEPT),
                ]
                if self.session_id is not None:
                    headers.append(("Mcp-Session-Id", self.session_id))
                if self.protocol_version is not None:
                    headers.append(("MCP-Protocol-Version", self.protocol_version))
                if method == "POST":
                    headers.append(("Content-Type", "application/json"))
                headers.extend(extra)
                prepared = target, http11.BackendHTTP.head(method, target, headers)
            except http11.HTTPError as exc:
                raise BackendError(f"service '{self.service}' cannot be reached: {exc}") from None
            if len(self._heads) >= _MAX_CACHED_HEADS:
                self._heads.clear()
            self._heads[key] = prepared
        target, head = prepared
        return _Request(method, target, head, jsonrpc.encode(message) if message is not None else None)

    @asynccontextmanager
    async def _send(self, request: _Request) -> AsyncIterator[http11.Response]:
        try:
            async with self._forwarder.http.request(
                request.method, request.target, request.head, request.body
            ) as response:
                yield response
        except http11.HTTPError as exc:
            raise self._unreachable(exc) from None

    async def _check_status(self, response: http11.Response) -> None:
        if 200 <= response.status_code < 300:
            return
        detail = ""
        if response.media_type == "application/json":
            with contextlib.suppress(ValueError, http11.HTTPError):
                body = await response.aread(limit=_ERROR_BODY_LIMIT)
                decoded = jsonrpc.decode(body)
                error = decoded.get("error") if isinstance(decoded, dict) else None
                message = error.get("message") if isinstance(error, dict) else None
                if isinstance(message, str):
                    detail = f": {message}"
        raise BackendError(
            f"service '{self.service}' answered HTTP {response.status_code} "
            f"{response.reason_phrase}{http11.without_url_secrets(detail, self._url or '')}".rstrip()
        )

    def _unreachable(self, exc: Exception) -> BackendError:
        reason = http11.without_url_secrets(str(exc) or type(exc).__name__, self._url or "")
        return BackendError(f"service '{self.service}' is unreachable: {reason}")

    # -- the end of the session ---------------------------------------------------------

    async def _end_backend_session(self) -> None:
        if self.session_id is None:
            return
        with anyio.move_on_after(self._forwarder.delete_timeout), contextlib.suppress(Exception):
            request = await self._build("DELETE")
            async with self._send(request):
                pass
        self.session_id = None


class StreamableHTTPForwarder(Running):
    """Opens `StreamableHTTPUpstream`s over one shared pool of backend connections."""

    def __init__(
        self,
        *,
        user_tokens: UserTokenSource | None = None,
        delete_timeout: float = 2.0,
        reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 30.0,
    ) -> None:
        self.user_tokens = user_tokens
        self.http = http11.BackendHTTP()
        self.delete_timeout = delete_timeout
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self._upstreams: set[StreamableHTTPUpstream] = set()
        self._ids = itertools.count(1)

    def open(
        self, service: str, server: ServerConfig, principal: Principal, unsolicited: MessageSink
    ) -> StreamableHTTPUpstream:
        """A new session; the backend session starts with the client's `initialize`."""
        upstream = StreamableHTTPUpstream(self, service, server, principal, unsolicited)
        self._upstreams.add(upstream)
        return upstream

    @property
    def session_count(self) -> int:
        return len(self._upstreams)

    def next_request_id(self) -> int:
        return next(self._ids)

    async def aclose(self) -> None:
        """End every open backend session (DELETE, best effort) and close the client."""
        async with anyio.create_task_group() as task_group:
            for upstream in list(self._upstreams):
                task_group.start_soon(upstream.aclose)
        await self.http.aclose()

    def _forget(self, upstream: StreamableHTTPUpstream) -> None:
        self._upstreams.discard(upstream)

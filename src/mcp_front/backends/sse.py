"""A legacy SSE MCP server as backend: one event stream per client session.

Each session opens `GET <url>` on the backend, waits for its `endpoint` event, and then
POSTs the client's messages to that endpoint while the answers arrive on the stream.
The client's own `Authorization` and `Cookie` headers never get here: the backend is
sent only the headers configured for the service, rendered for the session's principal.

Failures reach the client as `BackendError`s with these messages:

- `service 'x' is unreachable` – the backend refused or dropped the connection;
- `service 'x' is not an SSE MCP server (it answered with content type ..., not
  text/event-stream)` – the URL answers, but not with an event stream;
- `service 'x' answered its SSE URL with HTTP <status>` – any other non-2xx answer;
- `service 'x' sent a message endpoint on another origin; refused` – the `endpoint`
  event pointed away from the SSE URL's scheme, host and port (an SSRF guard);
- `service 'x' sent no message endpoint within <n>s` – the start-up budget ran out;
- `service 'x' did not answer within <n>s` – a request outlived `timeout`;
- `service 'x' closed its event stream before answering; the next request reconnects`.

A dropped stream is invisible to the client apart from the requests it was answering:
the next request opens a new stream, replays the client's `initialize`, and goes on.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final
from urllib.parse import urljoin

import anyio
import httpx2

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError, MessageSink, configured
from mcp_front.backends.exchanges import ExchangeTable
from mcp_front.backends.http_client import backend_client
from mcp_front.backends.session import BackendSession
from mcp_front.backends.templating import UserTokenSource
from mcp_front.config import ServerConfig
from mcp_front.errors import MCPFrontError
from mcp_front.lifecycle import TaskGroupOwner
from mcp_front.protocol import jsonrpc, messages
from mcp_front.protocol.jsonrpc import Message

logger = logging.getLogger("mcp_front.backends.sse")

DEFAULT_REQUEST_TIMEOUT: Final = timedelta(seconds=60)
"""How long a request waits for its answer when the service sets no `timeout`."""

MAX_EVENT_BYTES: Final = 32 * 1024 * 1024
"""The largest event accepted from a backend; a bigger one ends the stream."""

_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(slots=True)
class _Connection:
    """One event stream and the message endpoint it announced."""

    headers: dict[str, str]
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    ready: anyio.Event = field(default_factory=anyio.Event)
    endpoint: str | None = None
    error: BackendError | None = None
    alive: bool = True


class _StaleEndpoint(MCPFrontError):
    """The backend no longer knows the session behind the endpoint (HTTP 404 on a POST)."""


class SSEUpstream(BackendSession):
    """The `Upstream` of one client session on a legacy SSE service."""

    logger = logger

    def __init__(
        self,
        forwarder: SSEForwarder,
        service: str,
        server: ServerConfig,
        principal: Principal,
        unsolicited: MessageSink,
    ) -> None:
        super().__init__(service, server, principal, forwarder.user_tokens)
        self._forwarder = forwarder
        self._connection: _Connection | None = None
        self._exchanges = ExchangeTable(unsolicited, forwarder.next_request_id)
        self._connect_lock = anyio.Lock()
        self.connect_count = 0

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.alive

    # -- Upstream -----------------------------------------------------------------------

    async def request(self, message: Message, related: MessageSink) -> Message:
        if self.closed:
            raise self.closed_error()
        is_initialize = message["method"] == "initialize"
        with self._exchanges.progress_to(message, related):
            for attempt in (1, 2):
                connection = await self._ensure_connection(replay=not is_initialize)
                try:
                    response = await self._exchange(connection, message, self._request_budget)
                except _StaleEndpoint:
                    self._drop(connection)
                    if attempt == 2:
                        raise BackendError(self._dropped_message()) from None
                    continue
                if is_initialize:
                    self.record_initialize(message, response)
                return response
            raise AssertionError("unreachable")  # pragma: no cover

    async def notify(self, message: Message) -> None:
        if self.closed:
            return
        self.record_notification(message)
        connection = await self._ensure_connection(replay=True)
        try:
            await self._post(connection, message)
        except _StaleEndpoint:
            self._drop(connection)

    async def respond(self, message: Message) -> None:
        connection = self._connection
        if connection is not None and connection.alive:
            with contextlib.suppress(_StaleEndpoint, BackendError):
                await self._post(connection, message)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        connection = self._connection
        if connection is not None:
            self._drop(connection)
        self._forwarder.forget(self)

    # -- connection ---------------------------------------------------------------------

    @property
    def _request_budget(self) -> float:
        return (self.server.timeout or DEFAULT_REQUEST_TIMEOUT).total_seconds()

    @property
    def _startup_budget(self) -> float:
        return (self.server.timeout or self.server.startup_timeout).total_seconds()

    async def connect(self) -> None:
        """Open the event stream now, so that a backend that is down fails the open."""
        await self._ensure_connection(replay=False)

    async def _ensure_connection(self, *, replay: bool) -> _Connection:
        connection = self._connection
        if connection is not None and connection.alive:
            return connection
        async with self._connect_lock:
            connection = self._connection
            if connection is not None and connection.alive:
                return connection
            if self.closed:
                raise self.closed_error()
            connection = await self._open_stream()
            try:
                if replay:
                    await self._replay_initialize(connection)
            except BaseException:
                self._drop(connection)
                raise
            if not connection.alive:
                raise BackendError(self._dropped_message())
            self._connection = connection
            return connection

    async def _open_stream(self) -> _Connection:
        server = self.server
        if server.url is None:
            raise BackendError(f"service '{self.service}' has no url to connect to")
        url = await self.render(server.url)
        headers = await self.render_all(
            {name: value for name, value in server.headers.items() if name.lower() not in _HOP_BY_HOP}
        )
        connection = _Connection(headers)
        self._forwarder.task_group.start_soon(self._read_stream, connection, url)
        budget = self._startup_budget
        try:
            with anyio.move_on_after(budget):
                await connection.ready.wait()
        except BaseException:
            self._drop(connection)
            raise
        if not connection.ready.is_set():
            self._drop(connection)
            raise BackendError(
                f"service '{self.service}' sent no message endpoint within {budget:g}s",
                code=jsonrpc.REQUEST_TIMEOUT,
            )
        if connection.endpoint is None:
            raise connection.error or BackendError(f"service '{self.service}' is unreachable")
        self.connect_count += 1
        logger.info(
            "connected to %s for %s",
            self.service,
            self.principal.display_name,
            extra=self.log_context,
        )
        return connection

    async def _read_stream(self, connection: _Connection, url: str) -> None:
        client = self._forwarder.client
        headers = {**connection.headers, "Accept": "text/event-stream", "Cache-Control": "no-store"}
        timeout = httpx2.Timeout(self._startup_budget, read=None)
        try:
            with connection.scope:
                async with client.stream("GET", url, headers=headers, timeout=timeout) as response:
                    self._check_stream_response(response)
                    async for event in httpx2.EventSource(response, max_event_size=MAX_EVENT_BYTES):
                        if event.event == "endpoint" and connection.endpoint is None:
                            connection.endpoint = self._checked_endpoint(url, event.data)
                            connection.ready.set()
                        elif event.event == "message" and event.data and connection.endpoint is not None:
                            await self._on_message(event.data)
        except BackendError as exc:
            connection.error = exc
        except httpx2.HTTPError as exc:
            connection.error = BackendError(f"service '{self.service}' is unreachable")
            if connection.ready.is_set():
                logger.warning(
                    "the event stream of %s for %s broke: %s",
                    self.service,
                    self.principal.display_name,
                    type(exc).__name__,
                    extra=self.log_context,
                )
        finally:
            was_ready = connection.ready.is_set() and connection.error is None
            if connection.endpoint is None and connection.error is None:
                connection.error = BackendError(
                    f"service '{self.service}' closed its event stream before sending a message endpoint"
                )
            connection.ready.set()
            if not self.closed and was_ready:
                logger.info(
                    "the event stream of %s for %s ended; the next request reconnects",
                    self.service,
                    self.principal.display_name,
                    extra=self.log_context,
                )
            self._drop(connection)

    def _check_stream_response(self, response: httpx2.Response) -> None:
        content_type = response.headers.get("content-type", "")
        if response.is_success and content_type.partition(";")[0].strip().lower() != "text/event-stream":
            shown = content_type.partition(";")[0].strip() or "none"
            raise BackendError(
                f"service '{self.service}' is not an SSE MCP server "
                f"(it answered with content type {shown}, not text/event-stream)"
            )
        if not response.is_success:
            raise BackendError(
                f"service '{self.service}' answered its SSE URL with HTTP {response.status_code}"
            )

    def _checked_endpoint(self, url: str, data: str) -> str:
        endpoint = urljoin(url, data.strip())
        if _origin(httpx2.URL(endpoint)) != _origin(httpx2.URL(url)):
            raise BackendError(f"service '{self.service}' sent a message endpoint on another origin; refused")
        return endpoint

    def _drop(self, connection: _Connection) -> None:
        """Forget a connection and fail the requests still waiting on it."""
        connection.alive = False
        connection.scope.cancel()
        if self._connection is connection:
            self._connection = None
        error = self.closed_error() if self.closed else BackendError(self._dropped_message())
        self._exchanges.fail_all(error, channel=connection)

    def _dropped_message(self) -> str:
        return (
            f"service '{self.service}' closed its event stream before answering; the next request reconnects"
        )

    # -- messages -----------------------------------------------------------------------

    async def _replay_initialize(self, connection: _Connection) -> None:
        async def exchange(message: Message) -> Message:
            try:
                return await self._exchange(connection, message, self._startup_budget)
            except _StaleEndpoint:
                raise BackendError(self._dropped_message()) from None

        async def send(message: Message) -> None:
            try:
                await self._post(connection, message)
            except _StaleEndpoint:
                raise BackendError(self._dropped_message()) from None

        await self.replay_initialize(exchange, send, occasion="after a reconnect")

    async def _exchange(self, connection: _Connection, message: Message, budget: float) -> Message:
        """Send one request under a gateway-assigned id and wait for the matching answer."""
        exchange = self._exchanges.start(connection)
        backend_id = exchange.backend_id
        try:
            with anyio.fail_after(budget):
                await self._post(connection, {**message, "id": backend_id})
                response = await exchange.outcome()
        except TimeoutError:
            await self._cancel_at_backend(connection, backend_id, "the request timed out")
            raise BackendError(
                f"service '{self.service}' did not answer within {budget:g}s", code=jsonrpc.REQUEST_TIMEOUT
            ) from None
        except anyio.get_cancelled_exc_class():
            if not exchange.settled:
                with anyio.CancelScope(shield=True):
                    await self._cancel_at_backend(connection, backend_id, "the client went away")
            raise
        finally:
            self._exchanges.finish(exchange)
        return {**response, "id": message["id"]}

    async def _cancel_at_backend(self, connection: _Connection, backend_id: int, reason: str) -> None:
        if not connection.alive:
            return
        with anyio.move_on_after(1), contextlib.suppress(_StaleEndpoint, BackendError):
            await self._post(connection, messages.cancelled(backend_id, reason))

    async def _post(self, connection: _Connection, message: Message) -> None:
        assert connection.endpoint is not None
        headers = {**connection.headers, "Content-Type": "application/json"}
        try:
            response = await self._forwarder.client.post(
                connection.endpoint, content=jsonrpc.encode(message), headers=headers
            )
        except httpx2.HTTPError:
            raise _StaleEndpoint from None
        if response.status_code == 404:
            raise _StaleEndpoint
        if not response.is_success:
            raise BackendError(f"service '{self.service}' refused a message with HTTP {response.status_code}")

    async def _on_message(self, data: str) -> None:
        decoded = self.decode(data, "sent an event")
        if decoded is None:
            return
        try:
            await self._exchanges.route(*decoded)
        except Exception:
            logger.exception("delivering a message from %s failed", self.service, extra=self.log_context)


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


class SSEForwarder(TaskGroupOwner):
    """Owns every legacy SSE backend connection of a gateway: one pooled HTTP client, the streams' tasks."""

    def __init__(
        self,
        services: Mapping[str, ServerConfig],
        *,
        user_tokens: UserTokenSource | None = None,
        client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.services = services
        self.user_tokens = user_tokens
        self.client = client or backend_client(timeout=httpx2.Timeout(30.0), max_keepalive_connections=64)
        self._sessions: set[SSEUpstream] = set()
        self._ids = itertools.count(1)

    async def open(self, service: str, principal: Principal, sink: MessageSink) -> SSEUpstream:
        """A new session, connected: raises `BackendError` if the backend cannot be reached."""
        session = SSEUpstream(self, service, configured(self.services, service, "forwarder"), principal, sink)
        self._sessions.add(session)
        try:
            await session.connect()
        except BaseException:
            await session.aclose()
            raise
        return session

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    async def aclose(self) -> None:
        """End every session and close the HTTP client."""
        for session in list(self._sessions):
            await session.aclose()
        await self.client.aclose()

    def next_request_id(self) -> int:
        return next(self._ids)

    def forget(self, session: SSEUpstream) -> None:
        """Drop a session that ended."""
        self._sessions.discard(session)

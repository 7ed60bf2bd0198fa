"""The streamable HTTP front transport: `/<service>/mcp` (POST, GET, DELETE)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
from mcp_types.jsonrpc import UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import is_version_at_least
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError, MessageSink, UpstreamOpener
from mcp_front.protocol import headers, jsonrpc, messages
from mcp_front.protocol.jsonrpc import Message, MessageKind
from mcp_front.protocol.revisions import HANDSHAKE_VERSIONS, PRIMING_VERSION, is_self_contained
from mcp_front.storage.base import StoreUnavailable
from mcp_front.transports import http
from mcp_front.transports.answer import Answer, Heartbeat
from mcp_front.transports.event_log import MAX_EVENTS_PER_STREAM, EventLog, EventStream
from mcp_front.transports.replication import SessionReplication
from mcp_front.transports.session import FrontSession, SessionRegistry
from mcp_front.transports.session_records import SessionRecord
from mcp_front.transports.v2026_07_28 import SelfContainedRequests

logger = logging.getLogger("mcp_front.transports")


class StreamableHTTPTransport:
    """ASGI endpoint for one service's streamable HTTP traffic."""

    def __init__(
        self,
        service: str,
        registry: SessionRegistry,
        open_upstream: UpstreamOpener,
        origins: http.OriginPolicy,
        *,
        heartbeat: Heartbeat | None = None,
        ping_interval: float = http.PING_INTERVAL,
        native_self_contained: bool = False,
        replication: SessionReplication | None = None,
    ) -> None:
        """`native_self_contained`: the backend is a streamable-HTTP server, which may take
        2026-07-28 requests natively (see `v2026_07_28.SelfContainedRequests`)."""
        self.service = service
        self._registry = registry
        self._open_upstream = open_upstream
        self._origins = origins
        self._ping_interval = ping_interval
        self._heartbeat = heartbeat or Heartbeat(ping_interval)
        self._replication = replication
        self._self_contained = SelfContainedRequests(service, open_upstream, native=native_self_contained)

    async def aclose(self) -> None:
        """End the 2026-07-28 channels, which no session owns."""
        await self._self_contained.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if self._replication is not None and self._held_elsewhere(request):
            try:
                carried_on = await self._replication.route(
                    scope,
                    receive,
                    send,
                    request.headers[headers.SESSION_ID],
                    self.service,
                    scope["user"],
                    self._take_over,
                )
            except BackendError as exc:
                return await http.backend_unavailable(exc)(scope, receive, send)
            except StoreUnavailable:
                return await _store_unavailable()(scope, receive, send)
            if carried_on is None:
                return
            receive = carried_on
            request = Request(scope, receive)
        response: Response | None
        if not self._origins.allows(request.headers):
            response = http.rpc_error(403, jsonrpc.INVALID_REQUEST, "Forbidden: this Origin is not allowed")
        elif request.method != "POST" and is_self_contained(request.headers.get(headers.PROTOCOL_VERSION)):
            response = http.rpc_error(
                405, jsonrpc.INVALID_REQUEST, "Method not allowed in 2026-07-28", headers={"Allow": "POST"}
            )
        elif request.method == "POST":
            response = await self._post(request, scope, receive, send)
        elif request.method == "GET":
            response = await self._get(request, scope, receive, send)
        elif request.method == "DELETE":
            response = await self._delete(request)
        else:
            response = http.rpc_error(
                405, jsonrpc.INVALID_REQUEST, "Method not allowed", headers={"Allow": "GET, POST, DELETE"}
            )
        if response is not None:
            await response(scope, receive, send)

    def _held_elsewhere(self, request: Request) -> bool:
        """Whether the request is for a session of the handshake era not held here."""
        session_id = request.headers.get(headers.SESSION_ID)
        return (
            session_id is not None
            and request.method in ("POST", "GET", "DELETE")
            and not self._registry.holds(session_id)
            and not is_self_contained(request.headers.get(headers.PROTOCOL_VERSION))
            and self._origins.allows(request.headers)
        )

    async def _take_over(self, session_id: str, record: SessionRecord, principal: Principal) -> None:
        """Open a session of another replica here, its backend initialized as the client did."""
        session = await self._registry.create(
            self.service, principal, self._open_upstream, session_id=session_id
        )
        assert session.upstream is not None
        try:
            response = await session.upstream.request(messages.initialize(record.initialize_params), _unheard)
            if "result" not in response:
                raise BackendError(
                    f"service '{self.service}' failed to initialize again: {messages.error_detail(response)}"
                )
            await session.upstream.notify(messages.initialized())
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._registry.close(session, forget=False)
            raise

    def _session(self, request: Request) -> tuple[FrontSession | None, Response | None]:
        session_id = request.headers.get(headers.SESSION_ID)
        if session_id is None:
            return None, http.rpc_error(
                400,
                jsonrpc.INVALID_REQUEST,
                "Bad Request: missing Mcp-Session-Id header; send initialize first",
            )
        principal: Principal = request.scope["user"]
        session = self._registry.get(session_id, self.service, principal)
        if session is None:
            return None, http.rpc_error(
                404, jsonrpc.INVALID_REQUEST, "Session not found; start a new session"
            )
        return session, None

    async def _post(self, request: Request, scope: Scope, receive: Receive, send: Send) -> Response | None:
        if not http.accepts(request.headers, "application/json", "text/event-stream"):
            return http.rpc_error(
                406,
                jsonrpc.INVALID_REQUEST,
                "Not Acceptable: Accept must include application/json and text/event-stream",
            )
        message, error = await http.read_message(request)
        if error is not None:
            return error
        assert message is not None
        if is_self_contained(request.headers.get(headers.PROTOCOL_VERSION)):
            return await self._post_self_contained(request, message, scope, receive, send)
        version_error = _check_protocol_version(request, message)
        if version_error is not None:
            return version_error
        kind = jsonrpc.classify(message)
        is_initialize = kind is MessageKind.REQUEST and message["method"] == "initialize"
        if is_initialize:
            if request.headers.get(headers.SESSION_ID) is not None:
                return http.rpc_error(
                    400,
                    jsonrpc.INVALID_REQUEST,
                    "Bad Request: initialize must not carry Mcp-Session-Id",
                    request_id=message["id"],
                )
            try:
                session = await self._registry.create(self.service, scope["user"], self._open_upstream)
            except BackendError as exc:
                return http.backend_unavailable(exc, request_id=message["id"])
        else:
            found, error = self._session(request)
            if error is not None:
                return error
            assert found is not None
            session = found
        if kind is MessageKind.NOTIFICATION:
            await session.handle_notification(message)
            return Response(status_code=202)
        if kind is MessageKind.RESPONSE:
            await session.handle_response(message)
            return Response(status_code=202)

        async def produce(related: MessageSink) -> Message | None:
            return await session.handle_request(message, related)

        response = await self._answer(
            produce,
            {headers.SESSION_ID: session.id},
            request,
            send,
            # A dropped stream is not a cancellation in this era: the request goes on, and
            # the client may resume its stream with Last-Event-ID.
            cancel_on_disconnect=False,
            new_session=is_initialize,
            log=session.events,
        )
        if is_initialize and (response is None or "error" in response):
            await self._registry.close(session)
        elif is_initialize and self._replication is not None and response is not None:
            result = response.get("result")
            version = result.get("protocolVersion") if isinstance(result, dict) else None
            params = message.get("params")
            await self._replication.remember(
                session,
                version if isinstance(version, str) else None,
                params if isinstance(params, dict) else {},
            )
        return None

    async def _post_self_contained(
        self, request: Request, message: Message, scope: Scope, receive: Receive, send: Send
    ) -> Response | None:
        error = self._self_contained.check(request, message)
        if error is not None:
            return error
        if jsonrpc.classify(message) is MessageKind.NOTIFICATION:
            return Response(status_code=202)
        principal: Principal = scope["user"]
        # Before the answer starts: a refusal must be a plain 403 and a mismatch a plain
        # 400, never an event stream.
        error = await self._self_contained.refusal(principal, message)
        if error is not None:
            return error
        error = await self._self_contained.check_arguments(principal, request, message)
        if error is not None:
            return error

        async def produce(related: MessageSink) -> Message | None:
            return await self._self_contained.answer(principal, message, related)

        # In 2026-07-28, closing the response stream is how a client cancels.
        await self._answer(produce, {}, request, send, cancel_on_disconnect=True)
        return None

    async def _answer(
        self,
        produce: Callable[[MessageSink], Awaitable[Message | None]],
        response_headers: dict[str, str],
        request: Request,
        send: Send,
        *,
        cancel_on_disconnect: bool,
        new_session: bool = False,
        log: EventLog | None = None,
    ) -> Message | None:
        """Forward one request and send its answer (see `Answer`); return the response.

        A new session whose initialize failed gets no session id.
        """
        version = request.headers.get(headers.PROTOCOL_VERSION)
        # Clients older than 2025-11-25 may read an event without data as a broken message.
        prime = log is not None and version is not None and is_version_at_least(version, PRIMING_VERSION)
        answer = Answer(send, response_headers, log=log, prime=prime)
        if http.prefers_event_stream(request.headers):
            await answer.stream_now()
        response: Message | None = None
        async with self._heartbeat.watching(answer):
            if cancel_on_disconnect:
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(http.cancel_on_disconnect, request.receive, task_group.cancel_scope)
                    response = await produce(answer.related)
                    task_group.cancel_scope.cancel()
                if response is None:
                    return None  # the client went away: nobody to answer
            else:
                response = await produce(answer.related)
        if new_session and response is not None and "error" in response and not answer.streaming:
            answer.headers = {}
        await answer.finish(response, request.scope)
        return response

    async def _get(self, request: Request, scope: Scope, receive: Receive, send: Send) -> Response | None:
        if not http.accepts(request.headers, "text/event-stream"):
            return http.rpc_error(
                406, jsonrpc.INVALID_REQUEST, "Not Acceptable: Accept must include text/event-stream"
            )
        session, error = self._session(request)
        if error is not None:
            return error
        assert session is not None
        last_event_id = request.headers.get(headers.LAST_EVENT_ID)
        resumed = session.events.find(last_event_id) if last_event_id else None
        if resumed is not None and not resumed[0].standalone:
            await self._resume(session, *resumed, receive, send)
            return None
        if session.standalone is not None:
            return http.rpc_error(
                409, jsonrpc.INVALID_REQUEST, "Conflict: this session already has a GET stream"
            )
        events = resumed[0] if resumed is not None else session.events.open(standalone=True)
        missed = events.after(resumed[1]) if resumed is not None else []
        send_stream, receive_stream = anyio.create_memory_object_stream[Message](64)
        session.standalone = send_stream.send
        try:
            async with anyio.create_task_group() as task_group, receive_stream:
                task_group.start_soon(http.cancel_on_disconnect, receive, task_group.cancel_scope)
                task_group.start_soon(http.cancel_on_event, session.closed, task_group.cancel_scope)
                await self._start_event_stream(session, send, [http.PING_EVENT, *missed])
                while True:
                    chunk = http.PING_EVENT
                    with anyio.move_on_after(self._ping_interval):
                        chunk = events.record(await receive_stream.receive())
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await http.end_stream(send)
        finally:
            session.standalone = None
            send_stream.close()
        return None

    async def _resume(
        self, session: FrontSession, events: EventStream, last_seen: int, receive: Receive, send: Send
    ) -> None:
        """Replay what a request's stream sent after `last_seen`, then carry the rest of it."""
        send_stream, receive_stream = anyio.create_memory_object_stream[bytes](MAX_EVENTS_PER_STREAM)
        missed = events.after(last_seen)
        if events.finished.is_set():
            send_stream.close()
        else:
            events.attach(send_stream)
        try:
            async with anyio.create_task_group() as task_group, receive_stream:
                task_group.start_soon(http.cancel_on_disconnect, receive, task_group.cancel_scope)
                task_group.start_soon(http.cancel_on_event, session.closed, task_group.cancel_scope)
                await self._start_event_stream(session, send, missed)
                while True:
                    chunk = http.PING_EVENT
                    with anyio.move_on_after(self._ping_interval):
                        try:
                            chunk = await receive_stream.receive()
                        except anyio.EndOfStream:
                            break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                task_group.cancel_scope.cancel()
            await http.end_stream(send)
        finally:
            events.detach(send_stream)

    @staticmethod
    async def _start_event_stream(session: FrontSession, send: Send, chunks: list[bytes]) -> None:
        raw_headers = [*http.SSE_HEADERS, (headers.SESSION_ID.encode(), session.id.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def _delete(self, request: Request) -> Response:
        session, error = self._session(request)
        if error is not None:
            return error
        assert session is not None
        await self._registry.close(session)
        return Response(status_code=200)


async def _unheard(message: Message) -> None:
    """Where what a backend says while a taken-over session is initialized again goes."""


def _store_unavailable() -> Response:
    return http.rpc_error(
        503,
        jsonrpc.INTERNAL_ERROR,
        "Service Unavailable: the session store does not answer; retry",
        headers={"Retry-After": "1"},
    )


def _check_protocol_version(request: Request, message: Message) -> Response | None:
    version = request.headers.get(headers.PROTOCOL_VERSION)
    if version is None or version in HANDSHAKE_VERSIONS:
        return None
    request_id = message.get("id")
    if is_self_contained(version):
        return http.rpc_error(
            400,
            UNSUPPORTED_PROTOCOL_VERSION,
            f"Unsupported protocol version {version}; this gateway speaks the initialize handshake",
            request_id=request_id,
            data={"supported": list(HANDSHAKE_VERSIONS), "requested": version},
        )
    return http.rpc_error(
        400,
        jsonrpc.INVALID_REQUEST,
        f"Bad Request: unsupported MCP-Protocol-Version {version!r}; supported: "
        + ", ".join(HANDSHAKE_VERSIONS),
        request_id=request_id,
    )

"""The legacy SSE front transport: a stream at `/<service>/sse`, messages posted to
`/<service>/message?sessionId=…`. The session lives as long as its stream."""

from __future__ import annotations

import logging

import anyio
from anyio.abc import TaskGroup
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mcp_front.backends.base import BackendError, MessageSink, UpstreamOpener
from mcp_front.protocol import jsonrpc
from mcp_front.protocol.jsonrpc import Message, MessageKind
from mcp_front.text import escaped
from mcp_front.transports import http
from mcp_front.transports.replication import SessionReplication
from mcp_front.transports.session import FrontSession, SessionRegistry

logger = logging.getLogger("mcp_front.transports")

MAX_IN_FLIGHT = 64
"""Requests one SSE session may have unanswered at once; past it, 429."""


class SSETransport:
    """The two ASGI endpoints of one service's SSE transport."""

    def __init__(
        self,
        service: str,
        registry: SessionRegistry,
        open_upstream: UpstreamOpener,
        origins: http.OriginPolicy,
        *,
        message_path: str,
        ping_interval: float = http.PING_INTERVAL,
        replication: SessionReplication | None = None,
    ) -> None:
        self.service = service
        self._replication = replication
        self._registry = registry
        self._open_upstream = open_upstream
        self._origins = origins
        self._message_path = message_path
        self._ping_interval = ping_interval
        self._task_groups: dict[str, TaskGroup] = {}
        self._in_flight: dict[str, int] = {}
        self.max_in_flight = MAX_IN_FLIGHT

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if not self._origins.allows(request.headers):
            response = http.rpc_error(403, jsonrpc.INVALID_REQUEST, "Forbidden: this Origin is not allowed")
            return await response(scope, receive, send)
        if request.method != "GET":
            response = http.rpc_error(
                405, jsonrpc.INVALID_REQUEST, "Method not allowed", headers={"Allow": "GET"}
            )
            return await response(scope, receive, send)
        try:
            session = await self._registry.create(self.service, scope["user"], self._open_upstream)
        except BackendError as exc:
            return await http.backend_unavailable(exc)(scope, receive, send)
        send_stream, receive_stream = anyio.create_memory_object_stream[Message](64)
        sink: MessageSink = send_stream.send
        session.standalone = sink
        endpoint = f"{self._message_path}?sessionId={session.id}"
        try:
            async with anyio.create_task_group() as task_group, receive_stream:
                self._task_groups[session.id] = task_group
                task_group.start_soon(http.cancel_on_disconnect, receive, task_group.cancel_scope)
                task_group.start_soon(http.cancel_on_event, session.closed, task_group.cancel_scope)
                await send({"type": "http.response.start", "status": 200, "headers": http.SSE_HEADERS})
                chunk = b"event: endpoint\ndata: " + endpoint.encode() + b"\n\n"
                while True:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    chunk = http.PING_EVENT
                    with anyio.move_on_after(self._ping_interval):
                        chunk = http.sse_event(await receive_stream.receive())
            await http.end_stream(send)
        finally:
            self._task_groups.pop(session.id, None)
            self._in_flight.pop(session.id, None)
            send_stream.close()
            with anyio.CancelScope(shield=True):
                await self._registry.close(session)

    async def message(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        session_id = request.query_params.get("sessionId") or request.query_params.get("session_id")
        if self._replication is not None and session_id and not self._registry.holds(session_id):
            # An SSE session ends with its stream, so one whose replica is gone is gone too.
            carried_on = await self._replication.route(
                scope, receive, send, session_id, self.service, scope["user"], None
            )
            if carried_on is None:
                return
            receive = carried_on
            request = Request(scope, receive)
        response = await self._message(request, receive)
        await response(scope, receive, send)

    async def _message(self, request: Request, receive: Receive) -> Response:
        if not self._origins.allows(request.headers):
            return http.rpc_error(403, jsonrpc.INVALID_REQUEST, "Forbidden: this Origin is not allowed")
        if request.method != "POST":
            return http.rpc_error(
                405, jsonrpc.INVALID_REQUEST, "Method not allowed", headers={"Allow": "POST"}
            )
        session_id = request.query_params.get("sessionId") or request.query_params.get("session_id")
        if not session_id:
            return http.rpc_error(
                400, jsonrpc.INVALID_REQUEST, "Bad Request: the sessionId query parameter is missing"
            )
        session = self._registry.get(session_id, self.service, request.scope["user"])
        task_group = self._task_groups.get(session_id)
        if session is None or task_group is None:
            return http.rpc_error(404, jsonrpc.INVALID_REQUEST, "Session not found; open a new SSE stream")
        message, error = await http.read_message(request)
        if error is not None:
            return error
        assert message is not None
        kind = jsonrpc.classify(message)
        if kind is MessageKind.REQUEST:
            if self._in_flight.get(session_id, 0) >= self.max_in_flight:
                # A client that never reads its stream would otherwise pile up answers here.
                return http.rpc_error(
                    429,
                    jsonrpc.INVALID_REQUEST,
                    f"Too many requests in flight on this session (at most {self.max_in_flight}); "
                    "read the event stream, then retry",
                    headers={"Retry-After": "1"},
                )
            self._in_flight[session_id] = self._in_flight.get(session_id, 0) + 1
            task_group.start_soon(self._answer, session, message)
        elif kind is MessageKind.NOTIFICATION:
            await session.handle_notification(message)
        else:
            await session.handle_response(message)
        return Response("Accepted", status_code=202, media_type="text/plain")

    async def _answer(self, session: FrontSession, message: Message) -> None:
        try:
            sink = session.standalone
            if sink is None:
                return
            response = await session.handle_request(message, sink)
            if response is not None:
                try:
                    await sink(response)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    logger.debug("response to %s dropped: the stream closed", escaped(message.get("method")))
        finally:
            if session.id in self._in_flight:
                self._in_flight[session.id] -= 1

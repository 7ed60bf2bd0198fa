"""A client's MCP session at the gateway, whichever front transport carries it.

The session routes messages between the client's open streams and its upstream:
answers go back on the stream of the request that asked, and what the server sends
on its own goes where the client can hear it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import anyio
from anyio.abc import TaskGroup

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError, MessageSink, Upstream, UpstreamOpener
from mcp_front.config import SessionsConfig
from mcp_front.lifecycle import TaskGroupOwner
from mcp_front.protocol import jsonrpc
from mcp_front.protocol.jsonrpc import Message, RequestId
from mcp_front.text import escaped
from mcp_front.transports.event_log import EventBudget, EventLog

logger = logging.getLogger("mcp_front.transports")


class FrontSession:
    def __init__(
        self, session_id: str, service: str, principal: Principal, events: EventLog | None = None
    ) -> None:
        self.id = session_id
        self.service = service
        self.principal = principal
        self.upstream: Upstream | None = None
        self.standalone: MessageSink | None = None
        self.events = events if events is not None else EventLog(owner=principal.key)
        """The session's recent events, for clients that resume a stream."""
        self.last_seen = time.monotonic()
        self.closed = anyio.Event()
        self._request_sinks: dict[RequestId, MessageSink] = {}
        self._cancel_scopes: dict[RequestId, anyio.CancelScope] = {}

    def owned_by(self, principal: Principal) -> bool:
        """Whether `principal` is the caller that opened the session: the same identity,
        with the same static credential when it came with one."""
        same_key = secrets.compare_digest(self.principal.key, principal.key)
        mine, theirs = self.principal.credential or b"", principal.credential or b""
        return secrets.compare_digest(mine, theirs) and same_key

    async def deliver_unsolicited(self, message: Message) -> None:
        """Route a server message that answers no particular request.

        With one request in flight it almost surely concerns that request (a log line
        or a sampling call made while serving it); otherwise it goes to the standalone
        stream, and failing that to the newest request stream.
        """
        sinks = list(self._request_sinks.values())
        if len(sinks) == 1:
            target: MessageSink | None = sinks[0]
        elif self.standalone is not None:
            target = self.standalone
        else:
            target = sinks[-1] if sinks else None
        try:
            if target is not None:
                await target(message)
                return
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        await self._undeliverable(message)

    async def _undeliverable(self, message: Message) -> None:
        """A server request nobody can hear is refused at once, so the server does not
        wait forever for an answer; a notification is dropped."""
        if "id" in message and self.upstream is not None:
            await self.upstream.respond(
                jsonrpc.error_response(
                    message["id"],
                    jsonrpc.INTERNAL_ERROR,
                    "the client has no open stream to receive this request; it was not delivered",
                )
            )
        logger.debug("undeliverable %s: no open stream on the session", escaped(message.get("method")))

    async def handle_request(self, message: Message, sink: MessageSink) -> Message | None:
        """Forward a client request; `None` when the client itself cancelled it."""
        assert self.upstream is not None
        request_id: RequestId = message["id"]
        self.last_seen = time.monotonic()
        self._request_sinks[request_id] = sink
        try:
            with anyio.CancelScope() as scope:
                self._cancel_scopes[request_id] = scope
                try:
                    return await self.upstream.request(message, sink)
                except BackendError as exc:
                    return jsonrpc.error_response(request_id, exc.code, exc.message)
            return None
        finally:
            self._request_sinks.pop(request_id, None)
            self._cancel_scopes.pop(request_id, None)
            self.last_seen = time.monotonic()

    async def handle_notification(self, message: Message) -> None:
        assert self.upstream is not None
        self.last_seen = time.monotonic()
        if message["method"] == "notifications/cancelled":
            params = message.get("params") or {}
            request_id = params.get("requestId")
            scope = self._cancel_scopes.get(request_id) if isinstance(request_id, str | int) else None
            if scope is not None:
                scope.cancel()
            return
        try:
            await self.upstream.notify(message)
        except BackendError as exc:
            logger.warning(
                "notification %s not delivered: %s", escaped(message["method"]), escaped(exc.message)
            )

    async def handle_response(self, message: Message) -> None:
        assert self.upstream is not None
        self.last_seen = time.monotonic()
        await self.upstream.respond(message)

    async def aclose(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.events.close()
        for scope in list(self._cancel_scopes.values()):
            scope.cancel()
        if self.upstream is not None:
            await self.upstream.aclose()


@dataclass(frozen=True, slots=True)
class SessionLimits:
    retention: timedelta = timedelta(hours=24)
    """How long an idle session is kept, so a client can come back to it."""
    max_per_principal: int = 100
    """Session records per caller; past it the least recently used one is closed."""
    sweep_interval: timedelta = timedelta(minutes=1)

    @classmethod
    def of(cls, sessions: SessionsConfig) -> SessionLimits:
        """The limits `proxy.sessions` sets: a session is kept at least as long as its backend,
        and a caller may hold ten records for each backend session it may run."""
        return cls(
            retention=max(sessions.retention, sessions.timeout),
            max_per_principal=max(100, 10 * sessions.max_per_user),
            sweep_interval=sessions.cleanup_interval,
        )


class SessionRegistry(TaskGroupOwner):
    """Every live session of the gateway, keyed by its unguessable id."""

    def __init__(self, limits: SessionLimits | None = None, *, events: EventBudget | None = None) -> None:
        self.limits = limits or SessionLimits()
        self.events = events if events is not None else EventBudget()
        """What the sessions' event logs may keep, all together and per principal."""
        self._sessions: dict[str, FrontSession] = {}
        self.new_id: Callable[[], str] = lambda: secrets.token_urlsafe(24)
        """Makes the id of a new session; replicas start it with their own id."""
        self.forgotten: Callable[[FrontSession], Awaitable[None]] | None = None
        """Told of a session that ended for good (closed, expired, evicted), not of those
        a stopping gateway leaves for another replica to take over."""

    def __len__(self) -> int:
        return len(self._sessions)

    async def create(
        self,
        service: str,
        principal: Principal,
        open_upstream: UpstreamOpener,
        *,
        session_id: str | None = None,
    ) -> FrontSession:
        """A new session; `session_id` keeps the id of one taken over from another replica."""
        await self._make_room(principal)
        session_id = session_id if session_id is not None else self.new_id()
        session = FrontSession(session_id, service, principal, self.events.log(principal.key))
        try:
            session.upstream = await open_upstream(principal, session.deliver_unsolicited)
        except BaseException:
            session.events.close()
            raise
        self._sessions[session.id] = session
        logger.debug("session opened on %s for %s", service, principal.display_name)
        return session

    def get(self, session_id: str, service: str, principal: Principal) -> FrontSession | None:
        """The session, only for the service and principal it belongs to."""
        session = self._sessions.get(session_id)
        if session is None or session.service != service or not session.owned_by(principal):
            return None
        return session

    def holds(self, session_id: str) -> bool:
        """Whether a session with this id lives here, whoever it belongs to."""
        return session_id in self._sessions

    def find(self, session_id: str) -> FrontSession | None:
        """The session with this id, without any check of who asks."""
        return self._sessions.get(session_id)

    async def close(self, session: FrontSession, *, forget: bool = True) -> None:
        """End a session; `forget=False` leaves its record for another replica."""
        if self._sessions.pop(session.id, None) is not None:
            logger.debug("session closed on %s for %s", session.service, session.principal.display_name)
            if forget and self.forgotten is not None:
                await self.forgotten(session)
        await session.aclose()

    async def close_all(self) -> None:
        """End every session here, leaving their records: another replica may take them over."""
        async with anyio.create_task_group() as task_group:
            for session in list(self._sessions.values()):
                task_group.start_soon(partial(self.close, session, forget=False))

    async def expire_idle(self) -> int:
        deadline = time.monotonic() - self.limits.retention.total_seconds()
        expired = [s for s in self._sessions.values() if s.last_seen < deadline]
        for session in expired:
            await self.close(session)
        return len(expired)

    def started(self, task_group: TaskGroup) -> None:
        task_group.start_soon(self._sweep)

    async def aclose(self) -> None:
        """Close every session, as the gateway stops."""
        await self.close_all()

    async def _make_room(self, principal: Principal) -> None:
        own = [s for s in self._sessions.values() if s.principal.key == principal.key]
        if len(own) < self.limits.max_per_principal:
            return
        oldest = min(own, key=lambda s: s.last_seen)
        logger.info("closing least recently used session of %s to make room", principal.display_name)
        await self.close(oldest)

    async def _sweep(self) -> None:
        while True:
            await anyio.sleep(self.limits.sweep_interval.total_seconds())
            await self.expire_idle()

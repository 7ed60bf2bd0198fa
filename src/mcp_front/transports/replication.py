"""`SessionReplication`: sessions served by whichever replica a load balancer picks.

A session lives in the replica that created it, whose id starts the session id. A
request for a session this replica does not hold goes to the owner, looked up in the
cached `ReplicaDirectory` (no store access); if the owner takes no connection, this
replica takes the streamable-HTTP session over from its `SessionRecord`, as the same
caller only, and wins only if its compare-and-set of the owner does. A request for a
session held here costs nothing more than with a single replica.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import anyio
from anyio.abc import TaskGroup
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

from mcp_front.auth.principal import Principal
from mcp_front.lifecycle import TaskGroupOwner
from mcp_front.protocol import headers, jsonrpc
from mcp_front.storage.base import StoreUnavailable
from mcp_front.transports import http
from mcp_front.transports.forwarding import (
    FORWARDED_HEADER,
    FORWARDED_SCOPE_KEY,
    Forwarder,
    ForwardingSeal,
    request_path,
)
from mcp_front.transports.replicas import HEARTBEAT, SEPARATOR, ReplicaDirectory, owner_of
from mcp_front.transports.session import FrontSession, SessionRegistry
from mcp_front.transports.session_records import SessionRecord, SessionRecords

logger = logging.getLogger("mcp_front.transports")

TakeOver = Callable[[str, SessionRecord, Principal], Awaitable[None]]
"""Opens a session under the given id for its principal and replays its `initialize`."""
MAX_RENEWAL_INTERVAL = timedelta(minutes=5)
MAX_MOVED = 10_000
"""Sessions taken over by some other replica whose new owner is remembered here."""


@dataclass(slots=True)
class _Kept:
    stored: bytes
    renewed_at: float


class SessionReplication(TaskGroupOwner):
    def __init__(
        self,
        directory: ReplicaDirectory,
        records: SessionRecords,
        seal: ForwardingSeal,
        forwarder: Forwarder,
        registry: SessionRegistry,
    ) -> None:
        self.directory = directory
        self._records = records
        self._seal = seal
        self._forwarder = forwarder
        self._registry = registry
        self._kept: dict[str, _Kept] = {}
        self._moved: OrderedDict[str, str] = OrderedDict()
        self._taking_over: dict[str, anyio.Lock] = {}
        self._renewal_interval = min(records.ttl / 4, MAX_RENEWAL_INTERVAL).total_seconds()
        registry.new_id = self.new_session_id
        registry.forgotten = self.forget

    @property
    def id(self) -> str:
        return self.directory.id

    def new_session_id(self) -> str:
        return f"{self.id}{SEPARATOR}{secrets.token_urlsafe(24)}"

    # -- the forwarded header ------------------------------------------------------------

    def forwarded(self, scope: Scope) -> bool | None:
        """`None` for a request from a client; true for one forwarded by a replica, whose
        header checks; false for a forged or stale header."""
        value = _header(scope, FORWARDED_HEADER)
        if value is None:
            return None
        session_id = _header(scope, headers.SESSION_ID) or _query_session_id(scope) or ""
        method, path = scope["method"], request_path(scope)
        if not self._seal.check(value, self.id, method, path, session_id):
            return False
        scope[FORWARDED_SCOPE_KEY] = True
        return True

    # -- routing -------------------------------------------------------------------------

    async def route(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        session_id: str,
        service: str,
        principal: Principal,
        take_over: TakeOver | None,
    ) -> Receive | None:
        """Serve a request for a session this replica does not hold: `None` when it was
        answered (by its owner), else the `receive` to go on with here (the session is now
        held here, or there is no such session for the caller).

        `take_over` is how the transport opens the session here, `None` for a transport
        whose sessions die with their replica (legacy SSE).
        """
        first_owner = owner_of(session_id)
        if scope.get(FORWARDED_SCOPE_KEY) or first_owner is None:
            return receive
        if first_owner == self.id and take_over is None:
            return receive
        # The body (one message, at most 4 MiB) is read before it is forwarded: if the owner
        # takes no connection, the request is served here after all.
        try:
            body = await http.read_body(receive) if scope["method"] == "POST" else b""
        except http.BodyTooLarge:
            response = http.rpc_error(
                413, jsonrpc.INVALID_REQUEST, f"Payload Too Large: the limit is {http.MAX_BODY_BYTES} bytes"
            )
            await response(scope, receive, send)
            return None
        receive = _replaying(body, receive)
        target: str | None = self._moved.get(session_id, first_owner)
        for _ in range(3):
            assert target is not None
            if target != self.id:
                address = await self.directory.lookup(target)
                if address is not None:
                    seal = self._seal.make(target, scope["method"], request_path(scope), session_id)
                    if await self._forwarder.forward(address, seal, scope, body, receive, send):
                        return None
                    self.directory.unreachable(target)
            if take_over is None:
                return receive
            target = await self._take_over_or_find(session_id, service, principal, target, take_over)
            if target is None:
                return receive
        return receive

    async def _take_over_or_find(
        self, session_id: str, service: str, principal: Principal, gone: str, take_over: TakeOver
    ) -> str | None:
        """Take the session of the `gone` replica over; or the replica that has it now;
        `None` when it is held here now, or is not the caller's to have."""
        lock = self._taking_over.setdefault(session_id, anyio.Lock())
        try:
            async with lock:
                if self._registry.holds(session_id):
                    return None
                found = await self._records.read(session_id)
                if found is None or not found[0].belongs_to(service, principal):
                    return None
                record, stored = found
                if record.owner == self.id:
                    return None
                if record.owner != gone:
                    return self._moved_to(session_id, record.owner)
                if not await self.directory.gone(gone):
                    return gone  # listed after all: it started after this replica last looked
                claimed = await self._records.claim(session_id, stored, record, self.id)
                if claimed is None:
                    again = await self._records.read(session_id)
                    return self._moved_to(session_id, again[0].owner) if again is not None else None
                try:
                    await take_over(session_id, record, principal)
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        # Give it back, so that the client's next try can take it over again.
                        await self._records.claim(session_id, claimed, record, gone)
                    raise
                self._kept[session_id] = _Kept(claimed, time.monotonic())
                self._moved.pop(session_id, None)
                logger.info("took over a session of %s from replica %s", principal.display_name, gone)
                return None
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._taking_over.pop(session_id, None)

    def _moved_to(self, session_id: str, owner: str) -> str | None:
        if owner == self.id:
            return None
        self._moved[session_id] = owner
        self._moved.move_to_end(session_id)
        while len(self._moved) > MAX_MOVED:
            self._moved.popitem(last=False)
        return owner

    # -- records -------------------------------------------------------------------------

    async def remember(
        self, session: FrontSession, protocol_version: str | None, initialize_params: dict[str, Any]
    ) -> None:
        """Write the record another replica would take the session over from."""
        record = SessionRecord.of(
            session.service, session.principal, protocol_version, initialize_params, self.id
        )
        try:
            stored = await self._records.write(session.id, record)
        except StoreUnavailable as error:
            logger.warning("session record not written, no other replica can take it over: %s", error)
            return
        self._kept[session.id] = _Kept(stored, time.monotonic())

    async def forget(self, session: FrontSession) -> None:
        """Remove the record of a session that ended here."""
        kept = self._kept.pop(session.id, None)
        if kept is None:
            return
        try:
            await self._records.forget(session.id, kept.stored)
        except StoreUnavailable as error:
            logger.warning("session record left to expire: %s", error)

    async def _renew_records(self) -> None:
        """Renew the records of the sessions used since their last renewal; a session
        another replica took over meanwhile (this one was cut off) is closed here."""
        now = time.monotonic()
        for session_id, kept in list(self._kept.items()):
            session = self._registry.find(session_id)
            if session is None or now - kept.renewed_at < self._renewal_interval:
                continue
            if session.last_seen < kept.renewed_at:
                continue
            if await self._records.renew(session_id, kept.stored):
                kept.renewed_at = now
                continue
            del self._kept[session_id]
            logger.info(
                "a session of %s moved to another replica; closed here", session.principal.display_name
            )
            await self._registry.close(session, forget=False)

    # -- lifecycle -----------------------------------------------------------------------

    async def join(self) -> None:
        """Register this replica before it serves: a session it opens must be findable."""
        await self.directory.heartbeat()

    def started(self, task_group: TaskGroup) -> None:
        task_group.start_soon(self._beat)

    async def _beat(self) -> None:
        while True:
            await anyio.sleep(HEARTBEAT.total_seconds())
            await self.directory.heartbeat()
            try:
                await self._renew_records()
            except StoreUnavailable as error:
                logger.warning("session records not renewed: %s", error)

    async def aclose(self) -> None:
        """Leave the directory, so the others take this replica's sessions over at once."""
        try:
            with anyio.fail_after(5):
                await self.directory.leave()
        except (StoreUnavailable, TimeoutError) as error:
            logger.warning("replica entry left to expire: %s", error)
        await self._forwarder.aclose()


class ForwardedRequests:
    """ASGI middleware, right behind a service's guard: a request with a forwarding header
    that does not check is refused, and one that checks is marked, before anything counts it
    (the replica that forwarded it counted it already)."""

    def __init__(self, app: ASGIApp, replication: SessionReplication) -> None:
        self.app = app
        self._replication = replication

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._replication.forwarded(scope) is False:
            forged = http.rpc_error(403, jsonrpc.INVALID_REQUEST, "Forbidden: invalid forwarding header")
            await forged(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope["headers"]:
        if key.lower() == wanted:
            return str(value, "latin-1")
    return None


def _query_session_id(scope: Scope) -> str | None:
    raw: bytes = scope.get("query_string", b"")
    query = parse_qs(raw.decode("latin-1"))
    for name in ("sessionId", "session_id"):
        if query.get(name):
            return query[name][0]
    return None


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` with the already read `body` given back first."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> ASGIMessage:
        return pending.pop() if pending else await receive()

    return replayed

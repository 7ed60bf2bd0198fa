"""Per-caller stdio MCP servers: one child process per (principal, service, session).

A session outlives its process. An idle process is reaped to free memory and a
crashed one is dropped; either way the next message respawns it and replays the
client's `initialize`, so the client never sees the difference.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
from anyio.abc import TaskGroup

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError, MessageSink
from mcp_front.backends.child_process import ChildGone, ChildProcess, ProcessLabel, child_environment
from mcp_front.backends.exchanges import ExchangeTable
from mcp_front.backends.templating import UserTokenSource, render_value
from mcp_front.config import ServerConfig
from mcp_front.transports import jsonrpc
from mcp_front.transports.jsonrpc import Message

logger = logging.getLogger("mcp_front.backends.stdio")


@dataclass(frozen=True, slots=True)
class StdioLimits:
    max_per_principal: int = 10
    max_processes: int = 256
    idle_timeout: timedelta = timedelta(minutes=30)
    sweep_interval: timedelta = timedelta(minutes=1)


class StdioSession:
    """The `Upstream` of one client session on a stdio service."""

    def __init__(
        self,
        pool: StdioSessionPool,
        service: str,
        server: ServerConfig,
        principal: Principal,
        unsolicited: MessageSink,
    ) -> None:
        self._pool = pool
        self.service = service
        self._server = server
        self.principal = principal
        self._child: ChildProcess | None = None
        self._expected_exit: set[int] = set()
        self._exchanges = ExchangeTable(unsolicited, pool.next_request_id)
        self._initialize_params: dict[str, Any] | None = None
        self._client_initialized = False
        self._start_lock = anyio.Lock()
        self._closed = False
        self._close_done = anyio.Event()
        self.in_flight = 0
        self.last_used = time.monotonic()
        self.spawn_count = 0

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None and self._child.running else None

    @property
    def has_process(self) -> bool:
        return self._child is not None and self._child.running

    # -- Upstream -----------------------------------------------------------------------

    async def request(self, message: Message, related: MessageSink) -> Message:
        if self._closed:
            raise BackendError(f"the session with service '{self.service}' is closed")
        self.in_flight += 1
        self.last_used = time.monotonic()
        try:
            is_initialize = message["method"] == "initialize"
            child = await self._ensure_child(replay=not is_initialize)
            try:
                with self._exchanges.progress_to(message, related):
                    response = await self._send_request(child, message, is_initialize)
            except TimeoutError:
                raise BackendError(
                    f"service '{self.service}' did not answer initialize within {self._startup_budget:g}s",
                    code=jsonrpc.REQUEST_TIMEOUT,
                ) from None
            return response
        finally:
            self.in_flight -= 1
            self.last_used = time.monotonic()

    async def _send_request(self, child: ChildProcess, message: Message, is_initialize: bool) -> Message:
        if not is_initialize:
            return await self._exchange(child, message)
        with anyio.fail_after(self._startup_budget):
            response = await self._exchange(child, message)
        if "result" in response:
            params = message.get("params")
            self._initialize_params = params if isinstance(params, dict) else {}
        return response

    async def notify(self, message: Message) -> None:
        if self._closed:
            return
        self.last_used = time.monotonic()
        if message["method"] == "notifications/initialized":
            self._client_initialized = True
        child = await self._ensure_child(replay=True)
        try:
            await child.send(jsonrpc.encode(message))
        except ChildGone:
            raise BackendError(self._stopped_message(child)) from None

    async def respond(self, message: Message) -> None:
        child = self._child
        if child is not None and child.running:
            with contextlib.suppress(ChildGone):
                await child.send(jsonrpc.encode(message))

    async def aclose(self) -> None:
        """End the session and its process; a second caller waits for the first to finish,
        so a shutdown never returns while a child is still being stopped elsewhere."""
        if self._closed:
            await self._close_done.wait()
            return
        self._closed = True
        try:
            with anyio.CancelScope(shield=True):
                await self._stop_child()
        finally:
            self._pool._forget(self)
            self._close_done.set()

    # -- lifecycle ----------------------------------------------------------------------

    async def reap(self) -> bool:
        """Stop an idle process; the session stays and respawns on its next message."""
        if self.in_flight or not self.has_process:
            return False
        logger.info(
            "reaping idle process of %s for %s",
            self.service,
            self.principal.display_name,
            extra={"service": self.service, "principal": self.principal.display_name},
        )
        await self._stop_child()
        return True

    @property
    def _startup_budget(self) -> float:
        return self._server.startup_timeout.total_seconds()

    async def _ensure_child(self, *, replay: bool) -> ChildProcess:
        child = self._child
        if child is not None and child.running:
            return child
        async with self._start_lock:
            child = self._child
            if child is not None and child.running:
                return child
            async with self._pool._admission(self):
                child = await self._spawn()
            if replay and self._initialize_params is not None:
                await self._replay_initialize(child)
            return child

    async def _spawn(self) -> ChildProcess:
        server = self._server
        if server.command is None:
            raise BackendError(f"service '{self.service}' has no command to run")
        user_tokens = self._pool.user_tokens
        args = [await render_value(a, self.principal, self.service, user_tokens) for a in server.args]
        env = {
            name: await render_value(value, self.principal, self.service, user_tokens)
            for name, value in server.env.items()
        }
        label = ProcessLabel(self.service, self.principal.display_name)
        try:
            child = await ChildProcess.start(
                self._pool.task_group,
                [server.command, *args],
                env=child_environment(env),
                cwd=server.cwd,
                label=label,
                on_line=self._on_line,
            )
        except OSError as exc:
            raise BackendError(f"service '{self.service}' could not be started: {exc.strerror}") from None
        self.spawn_count += 1
        self._child = child
        self._pool.task_group.start_soon(self._watch, child)
        logger.info(
            "started %s for %s (pid %d)",
            self.service,
            self.principal.display_name,
            child.pid,
            extra={"service": self.service, "principal": self.principal.display_name, "pid": child.pid},
        )
        return child

    async def _replay_initialize(self, child: ChildProcess) -> None:
        message = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": self._initialize_params}
        try:
            with anyio.fail_after(self._startup_budget):
                response = await self._exchange(child, message)
        except TimeoutError:
            await self._stop_child()
            raise BackendError(
                f"service '{self.service}' did not answer initialize within {self._startup_budget:g}s",
                code=jsonrpc.REQUEST_TIMEOUT,
            ) from None
        if "result" not in response:
            await self._stop_child()
            error = response.get("error")
            detail = error.get("message") if isinstance(error, dict) else None
            raise BackendError(
                f"service '{self.service}' failed to initialize again after a restart: "
                f"{detail or 'no reason given'}"
            )
        if self._client_initialized:
            try:
                await child.send(jsonrpc.encode({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            except ChildGone:
                raise BackendError(self._stopped_message(child)) from None

    async def _exchange(self, child: ChildProcess, message: Message) -> Message:
        """Send one request under a gateway-assigned id and wait for the matching answer."""
        exchange = self._exchanges.start()
        try:
            await child.send(jsonrpc.encode({**message, "id": exchange.backend_id}))
            response = await exchange.outcome()
        except ChildGone:
            raise BackendError(self._stopped_message(child)) from None
        except BaseException:
            if not exchange.settled and child.running:
                cancelled = {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": exchange.backend_id, "reason": "the client went away"},
                }
                with anyio.CancelScope(shield=True), anyio.move_on_after(1), contextlib.suppress(ChildGone):
                    await child.send(jsonrpc.encode(cancelled))
            raise
        finally:
            self._exchanges.finish(exchange)
        return {**response, "id": message["id"]}

    async def _on_line(self, line: bytes) -> None:
        try:
            message = jsonrpc.decode(line)
            kind = jsonrpc.classify(message)
        except ValueError:
            logger.warning(
                "service %s wrote a line that is not a JSON-RPC message; ignored",
                self.service,
                extra={"service": self.service, "principal": self.principal.display_name},
            )
            return
        await self._exchanges.route(message, kind)

    async def _watch(self, child: ChildProcess) -> None:
        await child.exited.wait()
        expected = child.pid in self._expected_exit
        self._expected_exit.discard(child.pid)
        if self._child is child:
            self._child = None
        if not expected:
            tail = "\n".join(child.stderr_tail) or "(no stderr output)"
            logger.warning(
                "service %s exited unexpectedly (exit code %s) for %s; last stderr lines:\n%s",
                self.service,
                child.returncode,
                self.principal.display_name,
                tail,
                extra={"service": self.service, "principal": self.principal.display_name, "pid": child.pid},
            )
        self._exchanges.fail_all(BackendError(self._stopped_message(child)))

    def _stopped_message(self, child: ChildProcess) -> str:
        code = "" if child.returncode is None else f" (exit code {child.returncode})"
        return (
            f"service '{self.service}' stopped unexpectedly{code} before answering; "
            "the next request starts it again"
        )

    async def _stop_child(self) -> None:
        child = self._child
        if child is None:
            return
        self._expected_exit.add(child.pid)
        await child.terminate()


class StdioSessionPool:
    """Owns every stdio child of a gateway: limits, idle reaping and shutdown."""

    def __init__(
        self, limits: StdioLimits | None = None, *, user_tokens: UserTokenSource | None = None
    ) -> None:
        self.limits = limits or StdioLimits()
        self.user_tokens = user_tokens
        self._sessions: set[StdioSession] = set()
        self._ids = itertools.count(1)
        self._starting: list[str] = []
        self._task_group: TaskGroup | None = None

    @property
    def task_group(self) -> TaskGroup:
        if self._task_group is None:
            raise RuntimeError("the StdioSessionPool is not running; enter pool.run() first")
        return self._task_group

    @asynccontextmanager
    async def run(self) -> AsyncIterator[StdioSessionPool]:
        """Run the pool; on exit every child's process group is terminated."""
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            task_group.start_soon(self._sweep)
            try:
                yield self
            finally:
                with anyio.CancelScope(shield=True):
                    await self.shutdown()
                task_group.cancel_scope.cancel()
                self._task_group = None

    def open(
        self, service: str, server: ServerConfig, principal: Principal, unsolicited: MessageSink
    ) -> StdioSession:
        """A new session; its process starts with the first message."""
        session = StdioSession(self, service, server, principal, unsolicited)
        self._sessions.add(session)
        return session

    @property
    def process_count(self) -> int:
        return sum(1 for s in self._sessions if s.has_process)

    def processes_of(self, principal: Principal) -> int:
        return sum(1 for s in self._sessions if s.has_process and s.principal.key == principal.key)

    async def shutdown(self) -> None:
        async with anyio.create_task_group() as task_group:
            for session in list(self._sessions):
                task_group.start_soon(session.aclose)

    async def reap_idle(self) -> int:
        """Stop processes idle longer than the limit; returns how many."""
        deadline = time.monotonic() - self.limits.idle_timeout.total_seconds()
        reaped = 0
        for session in list(self._sessions):
            if session.last_used < deadline and await session.reap():
                reaped += 1
        return reaped

    def next_request_id(self) -> int:
        return next(self._ids)

    @asynccontextmanager
    async def _admission(self, session: StdioSession) -> AsyncIterator[None]:
        """Make room for one more process, and hold it while the process starts.

        At a limit, the least recently used idle process (of this principal, or of anyone
        for the global limit) is reaped; its session survives and respawns when used, so
        abandoned sessions never lock a caller out. Only when every process is busy is the
        new one refused.
        """
        limits = self.limits
        subject = session.principal.key
        while True:
            if (
                self.processes_of(session.principal) + self._starting.count(subject)
                >= limits.max_per_principal
            ):
                victim = self._least_recently_used_idle(subject)
                if victim is None:
                    raise BackendError(
                        f"{session.principal.display_name} already has {limits.max_per_principal} sessions "
                        "busy with requests (the per-user limit); try again when one of them finishes",
                        code=jsonrpc.SESSION_LIMIT_REACHED,
                    )
            elif self.process_count + len(self._starting) >= limits.max_processes:
                victim = self._least_recently_used_idle(None)
                if victim is None:
                    raise BackendError(
                        f"the gateway is running its maximum of {limits.max_processes} backend processes, "
                        "all busy; try again shortly",
                        code=jsonrpc.SESSION_LIMIT_REACHED,
                    )
            else:
                break
            await victim.reap()
        self._starting.append(subject)
        try:
            yield
        finally:
            self._starting.remove(subject)

    def _least_recently_used_idle(self, subject: str | None) -> StdioSession | None:
        idle = [
            s
            for s in self._sessions
            if s.has_process and not s.in_flight and (subject is None or s.principal.key == subject)
        ]
        return min(idle, key=lambda s: s.last_used, default=None)

    def _forget(self, session: StdioSession) -> None:
        self._sessions.discard(session)

    async def _sweep(self) -> None:
        while True:
            await anyio.sleep(self.limits.sweep_interval.total_seconds())
            await self.reap_idle()


def _human(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"

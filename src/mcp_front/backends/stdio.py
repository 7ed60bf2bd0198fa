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
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import anyio
from anyio.abc import TaskGroup

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError, MessageSink, configured
from mcp_front.backends.child_process import ChildGone, ChildProcess, ProcessLabel, child_environment
from mcp_front.backends.exchanges import ExchangeTable
from mcp_front.backends.sandbox import Bubblewrap, SandboxPathRefused, runnable
from mcp_front.backends.session import BackendSession
from mcp_front.backends.templating import UserTokenSource
from mcp_front.config import ServerConfig, SessionsConfig
from mcp_front.lifecycle import TaskGroupOwner
from mcp_front.protocol import jsonrpc, messages
from mcp_front.protocol.jsonrpc import Message

logger = logging.getLogger("mcp_front.backends.stdio")


@dataclass(frozen=True, slots=True)
class StdioLimits:
    max_per_principal: int = 10
    max_processes: int = 256
    idle_timeout: timedelta = timedelta(minutes=30)
    sweep_interval: timedelta = timedelta(minutes=1)

    @classmethod
    def of(cls, sessions: SessionsConfig) -> StdioLimits:
        """The limits `proxy.sessions` sets."""
        return cls(
            max_per_principal=sessions.max_per_user,
            max_processes=sessions.max_processes,
            idle_timeout=sessions.timeout,
            sweep_interval=sessions.cleanup_interval,
        )


class StdioSession(BackendSession):
    """The `Upstream` of one client session on a stdio service."""

    logger = logger

    def __init__(
        self,
        pool: StdioSessionPool,
        service: str,
        server: ServerConfig,
        principal: Principal,
        unsolicited: MessageSink,
    ) -> None:
        super().__init__(service, server, principal, pool.user_tokens)
        self._pool = pool
        self._child: ChildProcess | None = None
        self._expected_exit: set[int] = set()
        self._exchanges = ExchangeTable(unsolicited, pool.next_request_id)
        self._start_lock = anyio.Lock()
        self._close_done = anyio.Event()
        self.in_flight = 0
        self.last_used = time.monotonic()
        self.spawn_count = 0
        self._spawned_with: str | None = None
        self._stopping: set[ChildProcess] = set()

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None and self._child.running else None

    @property
    def has_process(self) -> bool:
        """Whether a process of this session exists, one being stopped included."""
        return (self._child is not None and self._child.running) or bool(self._stopping)

    # -- Upstream -----------------------------------------------------------------------

    async def request(self, message: Message, related: MessageSink) -> Message:
        if self.closed:
            raise self.closed_error()
        self.in_flight += 1
        self.last_used = time.monotonic()
        try:
            is_initialize = message["method"] == "initialize"
            if not is_initialize:
                await self._respawn_if_credential_changed()
            child = await self._ensure_child(replay=not is_initialize)
            with self._exchanges.progress_to(message, related):
                if not is_initialize:
                    return await self._exchange(child, message)
                with self._startup_deadline():
                    response = await self._exchange(child, message)
            self.record_initialize(message, response)
            return response
        finally:
            self.in_flight -= 1
            self.last_used = time.monotonic()

    async def notify(self, message: Message) -> None:
        if self.closed:
            return
        self.last_used = time.monotonic()
        self.record_notification(message)
        child = await self._ensure_child(replay=True)
        await self._send(child, message)

    async def respond(self, message: Message) -> None:
        child = self._child
        if child is not None and child.running:
            with contextlib.suppress(ChildGone):
                await child.send(jsonrpc.encode(message))

    async def aclose(self) -> None:
        """End the session and its process; a second caller waits for the first to finish,
        so a shutdown never returns while a child is still being stopped elsewhere."""
        if self.closed:
            await self._close_done.wait()
            return
        self.closed = True
        try:
            with anyio.CancelScope(shield=True):
                await self._stop_child()
                # One being stopped elsewhere (reaped, replaced) is seen to its end too.
                for stopping in list(self._stopping):
                    await stopping.terminate()
        finally:
            self._pool.forget(self)
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
            extra=self.log_context,
        )
        await self._stop_child()
        return True

    @property
    def _startup_budget(self) -> float:
        return self.server.startup_timeout.total_seconds()

    @contextlib.contextmanager
    def _startup_deadline(self) -> Iterator[None]:
        """Bound an `initialize` by the service's start-up budget."""
        try:
            with anyio.fail_after(self._startup_budget):
                yield
        except TimeoutError:
            raise BackendError(
                f"service '{self.service}' did not answer initialize within {self._startup_budget:g}s",
                code=jsonrpc.REQUEST_TIMEOUT,
            ) from None

    async def _ensure_child(self, *, replay: bool) -> ChildProcess:
        child = self._child
        if child is not None and child.running:
            return child
        async with self._start_lock:
            child = self._child
            if child is not None and child.running:
                return child
            async with self._pool.admission(self):
                child = await self._spawn()
            if replay:
                await self._replay_initialize(child)
            return child

    async def _spawn(self) -> ChildProcess:
        server = self.server
        if server.command is None:
            raise BackendError(f"service '{self.service}' has no command to run")
        confined = await self._confined()
        self._spawned_with = await self.current_credential()
        args = [await self.render(arg) for arg in server.args]
        env = child_environment(await self.render_all(server.env))
        label = ProcessLabel(self.service, self.principal.display_name)
        argv = [server.command, *args]
        if confined:
            # Inside, a missing program would only be bubblewrap's exit code.
            if not runnable(server.command, env.get("PATH"), server.cwd):
                raise BackendError(
                    f"service '{self.service}' could not be started: No such file or directory"
                )
            try:
                argv = self._pool.sandbox.command(argv, server.sandbox, cwd=server.cwd)
            except SandboxPathRefused as refused:
                raise BackendError(f"service '{self.service}' could not be started: {refused}") from None
        try:
            child = await ChildProcess.start(
                self._pool.task_group,
                argv,
                env=env,
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
            extra={**self.log_context, "pid": child.pid},
        )
        return child

    async def _respawn_if_credential_changed(self) -> None:
        """A user who connects, replaces or disconnects the service while the session runs
        gets a process with the credential as it is now, the client none the wiser: the
        next request starts it over, replaying `initialize`. Only between requests, so no
        answer in flight is lost."""
        if not self.server.requires_user_token or self.in_flight > 1:
            return
        child = self._child
        if child is None or not child.running:
            return
        if await self.current_credential() != self._spawned_with:
            async with self._start_lock:
                if self._child is child and self.in_flight == 1:
                    await self._stop_child()

    async def _confined(self) -> bool:
        """Whether the child runs sandboxed; refuses to start, unsandboxed, a child that
        would hold the user's credential unless the service allows it."""
        settings = self.server.sandbox
        if not settings.enabled:
            return False
        check = await self._pool.sandbox.check()
        if check.available:
            return True
        if self.server.requires_user_token and not settings.allow_unsandboxed_credentials:
            raise BackendError(
                f"service '{self.service}' is not started: it would hold your own credential, and "
                "the gateway cannot sandbox its processes here (see the gateway's log)"
            )
        return False

    async def _replay_initialize(self, child: ChildProcess) -> None:
        """Initialize a respawned process as the client did the first; a process that will
        not is stopped, so the next message starts a fresh one."""

        async def exchange(message: Message) -> Message:
            return await self._exchange(child, message)

        async def send(message: Message) -> None:
            await self._send(child, message)

        try:
            with self._startup_deadline():
                await self.replay_initialize(exchange, send, occasion="after a restart")
        except BackendError:
            if child.running:
                await self._stop_child()
            raise

    async def _send(self, child: ChildProcess, message: Message) -> None:
        try:
            await child.send(jsonrpc.encode(message))
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
                cancelled = messages.cancelled(exchange.backend_id, "the client went away")
                with anyio.CancelScope(shield=True), anyio.move_on_after(1), contextlib.suppress(ChildGone):
                    await child.send(jsonrpc.encode(cancelled))
            raise
        finally:
            self._exchanges.finish(exchange)
        return {**response, "id": message["id"]}

    async def _on_line(self, line: bytes) -> None:
        decoded = self.decode(line, "wrote a line")
        if decoded is not None:
            await self._exchanges.route(*decoded)

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
                extra={**self.log_context, "pid": child.pid},
            )
        if expected and not self.closed:
            # Stopped on purpose between requests (reaped, or replaced for a new credential):
            # nothing was waiting on it, and what waits now is the new process's.
            return
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
        # Retired before it is stopped: a request arriving meanwhile gets a new process
        # instead of writing to the one going away.
        self._child = None
        self._expected_exit.add(child.pid)
        self._stopping.add(child)
        try:
            await child.terminate()
        finally:
            self._stopping.discard(child)


class StdioSessionPool(TaskGroupOwner):
    """Owns every stdio child of a gateway: limits, idle reaping and shutdown."""

    def __init__(
        self,
        services: Mapping[str, ServerConfig],
        limits: StdioLimits | None = None,
        *,
        user_tokens: UserTokenSource | None = None,
        sandbox: Bubblewrap | None = None,
    ) -> None:
        """`sandbox` confines the children of services whose `sandbox` is enabled (one
        without the gateway's files to hide by default)."""
        self.services = services
        self.limits = limits or StdioLimits()
        self.user_tokens = user_tokens
        self.sandbox = sandbox if sandbox is not None else Bubblewrap()
        self._sessions: set[StdioSession] = set()
        self._ids = itertools.count(1)
        self._starting: list[str] = []

    def started(self, task_group: TaskGroup) -> None:
        task_group.start_soon(self._sweep)

    async def open(self, service: str, principal: Principal, sink: MessageSink) -> StdioSession:
        """A new session; its process starts with the first message."""
        session = StdioSession(self, service, configured(self.services, service, "pool"), principal, sink)
        self._sessions.add(session)
        return session

    async def sandbox_warnings(self) -> list[str]:
        """What an operator must know about sandboxing here: nothing when every service that
        wants its processes sandboxed gets it."""
        confined = [name for name, server in self.services.items() if server.sandbox.enabled]
        check = await self.sandbox.check() if confined else None
        if check is None or check.available:
            return []
        warnings = [f"stdio processes of {', '.join(confined)} cannot be sandboxed: {check.problem}"]
        for name in confined:
            server = self.services[name]
            if server.requires_user_token and not server.sandbox.allow_unsandboxed_credentials:
                warnings.append(
                    f"service {name} will not start: it holds users' credentials and may not run "
                    f"unsandboxed (mcpServers.{name}.sandbox.allowUnsandboxedCredentials)"
                )
        return warnings

    @property
    def process_count(self) -> int:
        return sum(1 for s in self._sessions if s.has_process)

    def processes_of(self, principal: Principal) -> int:
        return sum(1 for s in self._sessions if s.has_process and s.principal.key == principal.key)

    async def aclose(self) -> None:
        """End every session; each child's process group is terminated."""
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

    def forget(self, session: StdioSession) -> None:
        """Drop a session that ended."""
        self._sessions.discard(session)

    @asynccontextmanager
    async def admission(self, session: StdioSession) -> AsyncIterator[None]:
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

    async def _sweep(self) -> None:
        while True:
            await anyio.sleep(self.limits.sweep_interval.total_seconds())
            await self.reap_idle()

"""One stdio child: spawned in its own process group, read line by line, ended as a group."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio
from anyio.abc import Process, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream

from mcp_front.errors import MCPFrontError

logger = logging.getLogger("mcp_front.backends.stdio")

INHERITED_ENVIRONMENT: tuple[str, ...] = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
)
"""The only gateway variables a child sees: enough to find programs and certificates.

Everything else in the gateway's environment (its signing keys, client secrets,
cloud credentials) stays out; a service gets more only through its `env` config.
"""

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
MAX_STDERR_LINE = 4096
STDERR_TAIL_LINES = 40


def child_environment(configured: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    source = os.environ if base is None else base
    env = {name: source[name] for name in INHERITED_ENVIRONMENT if name in source}
    env.update(configured)
    return env


def _printable(text: str) -> str:
    """Escape control characters, so a child cannot forge or garble the gateway's log lines."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ChildGone(MCPFrontError):
    """The child's stdin is closed: it exited, or is exiting."""


@dataclass(frozen=True, slots=True)
class ProcessLabel:
    """Tags every log line of a child, so a noisy one can be traced to its caller."""

    service: str
    principal: str


class _LogRateLimit:
    """Token bucket over stderr lines: a chatty child cannot flood the gateway's log."""

    def __init__(self, per_second: float = 20.0, burst: int = 200) -> None:
        self._rate = per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self.suppressed = 0

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self.suppressed += 1
        return False


class ChildProcess:
    """A started child. Lines on stdout are handed to `on_line`; stderr goes to the log."""

    def __init__(self, process: Process, label: ProcessLabel) -> None:
        self._process = process
        self.label = label
        self.pid = process.pid
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.exited = anyio.Event()
        self.returncode: int | None = None
        self._write_lock = anyio.Lock()
        self._rate_limit = _LogRateLimit()

    @classmethod
    async def start(
        cls,
        task_group: TaskGroup,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | None,
        label: ProcessLabel,
        on_line: Callable[[bytes], Awaitable[None]],
    ) -> ChildProcess:
        process = await anyio.open_process(
            list(command),
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
        child = cls(process, label)
        task_group.start_soon(child._pump_stdout, on_line)
        task_group.start_soon(child._pump_stderr)
        return child

    @property
    def running(self) -> bool:
        return not self.exited.is_set()

    async def send(self, line: bytes) -> None:
        """Write one message line; `ChildGone` if the child no longer reads."""
        stdin = self._process.stdin
        assert stdin is not None
        try:
            async with self._write_lock:
                await stdin.send(line + b"\n")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise ChildGone(self.pid) from exc

    async def _pump_stdout(self, on_line: Callable[[bytes], Awaitable[None]]) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        reader = BufferedByteReceiveStream(stdout)
        try:
            while True:
                line = await reader.receive_until(b"\n", MAX_MESSAGE_BYTES)
                if line.strip():
                    await on_line(line)
        except anyio.DelimiterNotFound:
            logger.error(
                "%s: a message over %d bytes; ending the process",
                self._describe(),
                MAX_MESSAGE_BYTES,
                extra=self._extra(),
            )
            self._signal_group(signal.SIGKILL)
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
        ):
            pass
        try:
            self.returncode = await self._process.wait()
        finally:
            self.exited.set()

    async def _pump_stderr(self) -> None:
        stderr = self._process.stderr
        assert stderr is not None
        reader = BufferedByteReceiveStream(stderr)
        while True:
            try:
                raw = await reader.receive_until(b"\n", MAX_STDERR_LINE)
            except anyio.DelimiterNotFound:
                raw = await reader.receive_exactly(MAX_STDERR_LINE)
            except (
                anyio.EndOfStream,
                anyio.IncompleteRead,
                anyio.ClosedResourceError,
                anyio.BrokenResourceError,
            ):
                return
            text = _printable(raw.decode(errors="replace").rstrip())
            if not text:
                continue
            self.stderr_tail.append(text)
            if self._rate_limit.allow():
                if self._rate_limit.suppressed:
                    logger.warning(
                        "%s: %d stderr lines suppressed",
                        self._describe(),
                        self._rate_limit.suppressed,
                        extra=self._extra(),
                    )
                    self._rate_limit.suppressed = 0
                logger.info("%s: %s", self._describe(), text, extra=self._extra())

    async def terminate(self, grace: float = 2.0) -> None:
        """End the whole process group: EOF on stdin first, then SIGTERM, then SIGKILL."""
        with anyio.CancelScope(shield=True):
            stdin = self._process.stdin
            if stdin is not None:
                with anyio.move_on_after(0.2):
                    await stdin.aclose()
            with anyio.move_on_after(min(grace, 0.5)):
                await self.exited.wait()
            self._signal_group(signal.SIGTERM)
            with anyio.move_on_after(grace):
                await self.exited.wait()
            # The leader may be gone while its own children (npx → node) live on.
            self._signal_group(signal.SIGKILL)
            with anyio.move_on_after(5):
                self.returncode = await self._process.wait()
            self.exited.set()
            # Close the pipes now: a sandbox's own processes may hold them a moment longer,
            # and pipes left to the garbage collector outlive the event loop.
            with anyio.move_on_after(1):
                await self._process.aclose()

    def _signal_group(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def _describe(self) -> str:
        return f"[{self.label.service} {self.label.principal} pid={self.pid}]"

    def _extra(self) -> dict[str, object]:
        return {"service": self.label.service, "principal": self.label.principal, "pid": self.pid}

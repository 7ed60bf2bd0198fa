"""Running a command tool: argv without a shell, its own process group, bounded time and output.

The process group is killed whatever ends the call (a timeout, the client cancelling, the
gateway stopping), so a tool that starts background children leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import anyio
from anyio.abc import ByteReceiveStream, Process

MAX_OUTPUT_BYTES: Final = 1024 * 1024
EXIT_GRACE: Final = 0.5
"""How long output may keep coming after the command exits, from children it left behind."""


@dataclass
class _Capture:
    """The first `limit` + `margin` bytes of a stream; the rest is read and dropped, so the
    writer never blocks. `truncated` says the stream had more than `limit` bytes.

    The `margin` is for redaction: a secret that starts before the limit is captured whole,
    so that it can be redacted before the output is cut to `limit`.
    """

    limit: int
    margin: int = 0
    data: bytearray = field(default_factory=bytearray)
    seen: int = 0
    done: anyio.Event = field(default_factory=anyio.Event)

    @property
    def truncated(self) -> bool:
        return self.seen > self.limit

    async def drain(self, stream: ByteReceiveStream) -> None:
        try:
            async for chunk in stream:
                self.seen += len(chunk)
                room = self.limit + self.margin - len(self.data)
                if room > 0:
                    self.data += chunk[:room]
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass
        finally:
            self.done.set()


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """How a command ended: `returncode` is None when it ran out of time."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    truncated: bool

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


class ProcessGroups:
    """The process groups of the commands running now, so that shutdown can end them all."""

    def __init__(self) -> None:
        self._running: set[int] = set()

    def __len__(self) -> int:
        return len(self._running)

    def add(self, pid: int) -> None:
        self._running.add(pid)

    def discard(self, pid: int) -> None:
        self._running.discard(pid)

    def kill_all(self) -> None:
        for pid in list(self._running):
            kill_group(pid)


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def run_command(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    time_limit: float,
    groups: ProcessGroups,
    output_limit: int = MAX_OUTPUT_BYTES,
    redaction_margin: int = 0,
) -> CommandOutcome:
    """Run `argv` to its end or for `time_limit` seconds; `OSError` if it cannot start.

    Each stream keeps up to `output_limit` + `redaction_margin` bytes: the caller redacts
    the output and only then cuts it to `output_limit`.
    """
    process = await anyio.open_process(
        list(argv),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    groups.add(process.pid)
    stdout = _Capture(output_limit, redaction_margin)
    stderr = _Capture(output_limit, redaction_margin)
    returncode: int | None = None
    try:
        with anyio.move_on_after(time_limit):
            returncode = await _wait(process, stdout, stderr)
    finally:
        with anyio.CancelScope(shield=True):
            await _end(process)
            groups.discard(process.pid)
    return CommandOutcome(
        returncode, bytes(stdout.data), bytes(stderr.data), stdout.truncated or stderr.truncated
    )


async def _wait(process: Process, stdout: _Capture, stderr: _Capture) -> int:
    assert process.stdout is not None
    assert process.stderr is not None
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(stdout.drain, process.stdout)
        task_group.start_soon(stderr.drain, process.stderr)
        returncode = await process.wait()
        with anyio.move_on_after(EXIT_GRACE):
            await stdout.done.wait()
            await stderr.done.wait()
        # Children left running would hold the pipes open, and outlive the call.
        kill_group(process.pid)
        with anyio.move_on_after(EXIT_GRACE):
            await stdout.done.wait()
            await stderr.done.wait()
        task_group.cancel_scope.cancel()
    return returncode


async def _end(process: Process) -> None:
    kill_group(process.pid)
    with anyio.move_on_after(5):
        await process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            # Read to the end, which comes once the last process holding the pipe is gone
            # (in a sandbox, a moment after the one waited for): the pipe is then closed,
            # not left to the garbage collector.
            with anyio.move_on_after(EXIT_GRACE), contextlib.suppress(Exception):
                async for _ in stream:
                    pass
            with contextlib.suppress(Exception):
                await stream.aclose()

"""Starting and stopping the benchmark's processes, always as whole process groups.

Every server the harness starts runs in a process group of its own and writes its
output to a log file, so nothing it prints can block it or clutter the report.
`ProcessSupervisor.close()` ends every group still running, then every descendant the
harness has left (a server's children may sit in groups of their own), waiting a
bounded time for each.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

TERMINATE_GRACE = 5.0
"""Seconds a process group gets between SIGTERM and SIGKILL."""

KILL_WAIT = 3.0
"""Seconds to wait for processes to disappear after SIGKILL."""


class BenchError(RuntimeError):
    """A benchmark step that cannot go on; the message says what failed."""


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """A server started by the harness, leader of its own process group."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no log)"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ProcessSupervisor:
    """Owns every process group the harness starts, and ends them all on `close()`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._servers: dict[int, ServerProcess] = {}
        self._seen: dict[int, psutil.Process] = {}

    def start_server(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready_timeout: float = 60.0,
    ) -> ServerProcess:
        """Start a server in a new process group and wait until it accepts connections."""
        log_path = self.log_dir / f"{name}-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        server = ServerProcess(name, process, port, log_path)
        self._servers[process.pid] = server
        try:
            _wait_for_port(server, ready_timeout)
        except BaseException:
            self.stop(server)
            raise
        return server

    def stop(self, server: ServerProcess) -> None:
        """End a server's process group, then whatever it started in groups of its own."""
        self._servers.pop(server.pid, None)
        descendants = self._remember_descendants(server.pid)
        if server.process.poll() is None:
            _signal_group(server.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(TERMINATE_GRACE)
        _signal_group(server.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(KILL_WAIT)
        _end_processes(descendants)

    def close(self) -> None:
        """End every server still running and every process the harness left behind."""
        for server in list(self._servers.values()):
            self.stop(server)
        self._remember_descendants(os.getpid())
        _end_processes(list(self._seen.values()))
        self._seen.clear()

    def _remember_descendants(self, pid: int) -> list[psutil.Process]:
        """Snapshot a process's descendants: once it is gone they are reparented out of reach."""
        try:
            children: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
        except psutil.Error:
            return []
        for child in children:
            self._seen.setdefault(child.pid, child)
        return children


def _wait_for_port(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.name} exited with code {server.process.returncode} before listening; "
                f"its log ends with:\n{server.log_tail()}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), 0.5):
            return
        time.sleep(0.05)
    raise BenchError(f"{server.name} did not listen on port {server.port} within {timeout:g}s")


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _end_processes(processes: list[psutil.Process]) -> None:
    """SIGTERM each process's group (or the process, when it shares ours), then SIGKILL."""
    alive = [p for p in processes if _running(p)]
    if not alive:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in alive:
            _signal_process_group(process, sig)
        wait = TERMINATE_GRACE if sig is signal.SIGTERM else KILL_WAIT
        _, still = psutil.wait_procs(alive, timeout=wait)
        alive = [p for p in still if _running(p)]
        if not alive:
            return


def _signal_process_group(process: psutil.Process, signum: signal.Signals) -> None:
    with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
        pgid = os.getpgid(process.pid)
        if pgid != os.getpgrp():
            os.killpg(pgid, signum)
        else:
            process.send_signal(signum)


def _running(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


@contextlib.contextmanager
def ignoring_interrupts() -> Iterator[None]:
    """Hold off Ctrl-C and SIGTERM while the harness cleans up, so cleanup finishes."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

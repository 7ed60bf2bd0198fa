"""What every side-by-side benchmark run does around its measurements.

A benchmark module supplies its settings, its targets and a harness; this module gives it
the command line (`--quick`, `--output`), a fresh log directory, the load-average warning
and record, the process supervisor that stops everything started (Ctrl-C and SIGTERM
included), and the JSON and markdown output, so these behave the same in every benchmark.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import psutil

from bench import targets
from bench.processes import BenchError, ProcessSupervisor, ignoring_interrupts

RESULTS_DIR = targets.BENCH_DIR / "results"
BUSY_LOAD_AVERAGE = 0.5
"""Above this one-minute load average other work on the machine skews the numbers."""

T = TypeVar("T")


class BenchReport(Protocol):
    machine: dict[str, Any]
    seconds: float
    interrupted: bool

    def write_json(self, path: Path) -> None: ...

    def markdown(self) -> str: ...


R = TypeVar("R", bound=BenchReport)


def parser(module: str, doc: str | None, quick_help: str) -> argparse.ArgumentParser:
    """The options every benchmark has; the caller adds its own."""
    found = argparse.ArgumentParser(
        prog=f"python -m bench.{module}", description=(doc or "").splitlines()[0] if doc else None
    )
    found.add_argument("--quick", action="store_true", help=quick_help)
    found.add_argument("--output", type=Path, help="the JSON results file (default: bench/results/…)")
    return found


@dataclass(frozen=True, slots=True)
class BenchRun:
    """One run's clock, where it writes, and the machine's load when it began."""

    started: datetime
    output: Path
    logs: Path
    load_before: float

    @classmethod
    def begin(cls, name: str, output: Path | None, logs_name: str) -> BenchRun:
        """Empty the run's log directory and warn when the machine is busy."""
        started = datetime.now(UTC)
        logs = RESULTS_DIR / logs_name
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        load_before = os.getloadavg()[0]
        if load_before > BUSY_LOAD_AVERAGE:
            print(
                f"warning: load average {load_before:.2f}: other work on this machine will skew the numbers",
                file=sys.stderr,
            )
        return cls(
            started=started,
            output=output or RESULTS_DIR / f"{name}-{started:%Y%m%dT%H%M%SZ}.json",
            logs=logs,
            load_before=load_before,
        )

    @property
    def started_text(self) -> str:
        return self.started.isoformat(timespec="seconds")

    def execute(self, prepare: Callable[[ProcessSupervisor], tuple[R, Callable[[], Awaitable[None]]]]) -> int:
        """Build the report and the work with `prepare`, run the work, then write and print the report.

        The exit status is 0, 1 on a `BenchError`, 130 when interrupted (partial results
        are still written and printed).
        """
        supervisor = ProcessSupervisor(self.logs)
        interrupted = False
        report: R | None = None
        clock = time.monotonic()
        try:
            report, work = prepare(supervisor)
            report.machine["load_average_before"] = round(self.load_before, 2)
            interrupted = anyio.run(until_sigterm, work)
        except KeyboardInterrupt:
            interrupted = True
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            with ignoring_interrupts():
                supervisor.close()
        if report is None:
            print("interrupted before the first measurement", file=sys.stderr)
            return 130
        report.machine["load_average_after"] = round(os.getloadavg()[0], 2)
        report.seconds = time.monotonic() - clock
        report.interrupted = interrupted
        report.write_json(self.output)
        if interrupted:
            print("**Interrupted: partial results.**\n")
        print(report.markdown())
        print(f"\nRaw results: {self.output}")
        return 130 if interrupted else 0


async def until_sigterm(work: Callable[[], Awaitable[None]]) -> bool:
    """Run `work`; `True` when a SIGTERM cut it short. A `BenchError` is re-raised as itself."""
    terminated = False
    failure: BenchError | None = None

    async with anyio.create_task_group() as task_group:

        async def on_sigterm() -> None:
            nonlocal terminated
            with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    terminated = True
                    task_group.cancel_scope.cancel()
                    return

        async def run() -> None:
            nonlocal failure
            try:
                await work()
            except BenchError as exc:
                failure = exc
            task_group.cancel_scope.cancel()

        task_group.start_soon(on_sigterm)
        task_group.start_soon(run)
    if failure is not None:
        raise failure
    return terminated


async def attempt(work: Awaitable[T]) -> tuple[T | None, str | None]:
    """The result of `work`, or the description of what it raised."""
    try:
        return await work, None
    except Exception as exc:
        return None, describe(exc)


def describe(exc: BaseException) -> str:
    """One line per failure, for a results table."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and its live descendants (0 for what is gone)."""
    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for member in family:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def rotated(items: list[T], shift: int) -> list[T]:
    """`items` starting at `shift` (modulo its length), wrapping around."""
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]

"""What the benchmark measures: call latency and rate, time to first result, idle memory.

Every loop here is bounded twice, by a count and by a deadline; a run that hits its
deadline keeps what it measured and says so (`truncated`).
"""

from __future__ import annotations

import gc
import math
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

import anyio
import psutil

from bench.clients import CALL_TIMEOUT, SessionFactory
from bench.processes import BenchError

SETUP_TIMEOUT = 120.0
"""Seconds the workers of one load run may take to open their sessions and warm up."""


@dataclass(frozen=True, slots=True)
class LoadSpec:
    calls: int
    """Timed calls in all, shared by the workers."""
    concurrency: int
    """Workers, each with a session of its own, each one request at a time."""
    warmup: int
    """Untimed calls per worker before the timed part starts."""
    time_limit: float
    """Seconds after which the timed part stops, whatever is left."""


@dataclass(frozen=True, slots=True)
class LoadSample:
    """The raw outcome of one load run."""

    latencies: list[float]
    """Seconds per timed call."""
    seconds: float
    """Wall time from the start signal to the last worker's last answer."""
    truncated: bool


@dataclass(frozen=True, slots=True)
class LoadResult:
    concurrency: int
    runs: int
    calls: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    calls_per_second: float
    truncated: bool

    @classmethod
    def merge(cls, concurrency: int, samples: list[LoadSample]) -> LoadResult:
        """Pool the calls of several runs: percentiles over all calls, rate over all time."""
        values = sorted(v * 1000 for sample in samples for v in sample.latencies)
        seconds = sum(sample.seconds for sample in samples)
        return cls(
            concurrency=concurrency,
            runs=len(samples),
            calls=len(values),
            seconds=seconds,
            p50_ms=percentile(values, 0.5),
            p99_ms=percentile(values, 0.99),
            mean_ms=sum(values) / len(values),
            max_ms=values[-1],
            calls_per_second=len(values) / seconds,
            truncated=any(sample.truncated for sample in samples),
        )


@dataclass(frozen=True, slots=True)
class Summary:
    samples: int
    median_ms: float
    open_median_ms: float | None
    p90_ms: float
    min_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class MemoryResult:
    sessions: int
    rss_before_mib: float
    rss_after_mib: float
    per_session_kib: float
    children: int
    """Processes under the server while the sessions were open (not counted in RSS)."""
    child_rss_mib: float
    """Their resident memory in all, for context only."""


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        raise ValueError("no samples")
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    weight = position - low
    return sorted_values[low] * (1 - weight) + sorted_values[high] * weight


def summarise(seconds: list[float], opened: list[float] | None = None) -> Summary:
    """Median, p90 and range of `seconds`; with `opened`, also its median."""
    values = sorted(s * 1000 for s in seconds)
    return Summary(
        samples=len(values),
        median_ms=percentile(values, 0.5),
        open_median_ms=percentile(sorted(s * 1000 for s in opened), 0.5) if opened else None,
        p90_ms=percentile(values, 0.9),
        min_ms=values[0],
        max_ms=values[-1],
    )


class _LoadState:
    """What the workers of one load run share."""

    def __init__(self, spec: LoadSpec) -> None:
        self.remaining = spec.calls
        self.ready = 0
        self.all_ready = anyio.Event()
        self.go = anyio.Event()
        self.deadline = math.inf
        self.latencies: list[float] = []
        self.finished_at: list[float] = []
        self.truncated = False


async def run_load(factory: SessionFactory, spec: LoadSpec) -> LoadSample:
    """`spec.concurrency` sessions call `echo` until `spec.calls` calls are done."""
    state = _LoadState(spec)

    async def worker(index: int) -> None:
        async with factory() as session:
            for n in range(spec.warmup):
                with anyio.fail_after(CALL_TIMEOUT):
                    await session.echo(f"warm-{index}-{n}")
            state.ready += 1
            if state.ready == spec.concurrency:
                state.all_ready.set()
            await state.go.wait()
            n = 0
            while state.remaining > 0:
                if time.perf_counter() > state.deadline:
                    state.truncated = True
                    break
                state.remaining -= 1
                n += 1
                text = f"call-{index}-{n}"
                started = time.perf_counter()
                with anyio.fail_after(CALL_TIMEOUT):
                    answer = await session.echo(text)
                state.latencies.append(time.perf_counter() - started)
                if answer != text:
                    raise BenchError(f"echo returned {answer!r} for {text!r}")
            state.finished_at.append(time.perf_counter())

    async with anyio.create_task_group() as task_group:
        for index in range(spec.concurrency):
            task_group.start_soon(worker, index)
        with anyio.fail_after(SETUP_TIMEOUT):
            await state.all_ready.wait()
        started = time.perf_counter()
        state.deadline = started + spec.time_limit
        state.go.set()
    return LoadSample(state.latencies, max(state.finished_at) - started, state.truncated)


@dataclass(frozen=True, slots=True)
class FirstResult:
    """One new session, in seconds from its first request (or its spawn)."""

    opened: float
    """Until the session was open: `initialize` answered and `notifications/initialized` sent."""
    answered: float
    """Until the first `echo` result."""


async def time_to_first_result(factory: SessionFactory, samples: int, time_limit: float) -> list[FirstResult]:
    """From opening a new session (spawn or `initialize`) to its first `echo` result.

    Closing the session (stopping its process) happens after the clock stops.
    """
    timings: list[FirstResult] = []
    deadline = time.perf_counter() + time_limit
    for n in range(samples):
        if timings and time.perf_counter() > deadline:
            break
        text = f"first-{n}"
        with anyio.fail_after(CALL_TIMEOUT):
            started = time.perf_counter()
            async with factory() as session:
                opened = time.perf_counter()
                answer = await session.echo(text)
                timings.append(FirstResult(opened - started, time.perf_counter() - started))
        if answer != text:
            raise BenchError(f"echo returned {answer!r} for {text!r}")
    return timings


def _rss_mib(process: psutil.Process) -> float:
    rss: int = process.memory_info().rss
    return rss / 2**20


async def idle_session_memory(
    factory: SessionFactory, server_pid: int, sessions: int, *, warmup: int = 5, settle: float = 1.0
) -> MemoryResult:
    """The server process's RSS growth per idle session (its children not counted).

    `warmup` sessions are opened first and kept, so one-off costs (lazy imports, first
    buffers) land before the baseline; then `sessions` more are opened and left idle.
    """
    server = psutil.Process(server_pid)
    async with AsyncExitStack() as stack:
        for _ in range(warmup):
            with anyio.fail_after(CALL_TIMEOUT):
                await stack.enter_async_context(factory())
        gc.collect()
        await anyio.sleep(settle)
        before = _rss_mib(server)
        for _ in range(sessions):
            with anyio.fail_after(CALL_TIMEOUT):
                await stack.enter_async_context(factory())
        await anyio.sleep(settle)
        after = _rss_mib(server)
        children = server.children(recursive=True)
        child_rss = 0.0
        for child in children:
            try:
                child_rss += _rss_mib(child)
            except psutil.Error:
                continue
    return MemoryResult(
        sessions=sessions,
        rss_before_mib=before,
        rss_after_mib=after,
        per_session_kib=(after - before) * 1024 / sessions,
        children=len(children),
        child_rss_mib=child_rss,
    )

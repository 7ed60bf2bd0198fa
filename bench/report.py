"""The results of one benchmark run: the goal checks, a markdown summary and a JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.measure import LoadResult, MemoryResult, Summary

GATEWAY = "mcp-front"
DIRECT = "direct stdio"
BRIDGES = ("supergateway", "mcp-proxy")
FLOOR = "HTTP floor (no backend)"
RAW_HTTP = "raw HTTP"
RAW_STDIO = "raw stdio"
SOCKET_HTTP = "single-write socket"
ADDED_P50_GOAL_MS = 1.0
NOT_RUN = "not run"
SERVING = ("uvicorn", "uvloop", "httptools")


@dataclass(slots=True)
class ThroughputRow:
    target: str
    client: str
    concurrency: int
    result: LoadResult | None = None
    error: str | None = None


@dataclass(slots=True)
class FirstResultRow:
    target: str
    client: str
    summary: Summary | None = None
    error: str | None = None
    note: str = ""


@dataclass(slots=True)
class MemoryRow:
    target: str
    result: MemoryResult | None = None
    error: str | None = None
    note: str = ""


@dataclass(slots=True)
class GoalCheck:
    goal: str
    measured: str
    met: bool | None
    """`None` when a row the check needs is missing."""


@dataclass(slots=True)
class Report:
    started: str
    quick: bool
    machine: dict[str, object]
    settings: dict[str, object]
    seconds: float = 0.0
    interrupted: bool = False
    throughput: list[ThroughputRow] = field(default_factory=list)
    first_result: list[FirstResultRow] = field(default_factory=list)
    memory: list[MemoryRow] = field(default_factory=list)
    goals: list[GoalCheck] = field(default_factory=list)

    def load(self, target: str, client: str, concurrency: int) -> LoadResult | None:
        for row in self.throughput:
            if (row.target, row.client, row.concurrency) == (target, client, concurrency):
                return row.result
        return None

    def check_goals(self) -> None:
        self.goals = [
            self._added_latency(RAW_HTTP),
            self._added_latency(SOCKET_HTTP),
            *(self._versus_bridges(c) for c in (1, 10)),
        ]

    def _added_latency(self, client: str) -> GoalCheck:
        goal = f"mcp-front adds under {ADDED_P50_GOAL_MS:g} ms at p50 (c=1, {client} client)"
        gateway = self.load(GATEWAY, client, 1)
        direct = self.load(DIRECT, RAW_STDIO, 1)
        if gateway is None or direct is None:
            return GoalCheck(goal, "not measured", None)
        added = gateway.p50_ms - direct.p50_ms
        measured = (
            f"adds {added:.3f} ms (p50 {gateway.p50_ms:.3f} ms through mcp-front "
            f"- {direct.p50_ms:.3f} ms direct raw stdio)"
        )
        floor = self.load(FLOOR, client, 1)
        if floor is not None:
            own = gateway.p50_ms - floor.p50_ms - direct.p50_ms
            measured += f"; HTTP floor {floor.p50_ms:.3f} ms, leaving {own:.3f} ms to the gateway itself"
        return GoalCheck(goal, measured, added < ADDED_P50_GOAL_MS)

    def _versus_bridges(self, concurrency: int) -> GoalCheck:
        goal = f"mcp-front at least as fast as the fastest bridge (c={concurrency})"
        gateway = self.load(GATEWAY, RAW_HTTP, concurrency)
        bridges = {name: self.load(name, RAW_HTTP, concurrency) for name in BRIDGES}
        measured_bridges = {name: result for name, result in bridges.items() if result is not None}
        if gateway is None or not measured_bridges:
            return GoalCheck(goal, "not measured", None)
        fastest_name, fastest = max(measured_bridges.items(), key=lambda item: item[1].calls_per_second)
        quickest_name, quickest = min(measured_bridges.items(), key=lambda item: item[1].p50_ms)
        met = gateway.calls_per_second >= fastest.calls_per_second and gateway.p50_ms <= quickest.p50_ms
        measured = (
            f"{gateway.calls_per_second:.0f} calls/s, p50 {gateway.p50_ms:.3f} ms; best bridge rate "
            f"{fastest.calls_per_second:.0f} calls/s ({fastest_name}), best bridge p50 "
            f"{quickest.p50_ms:.3f} ms ({quickest_name}); the gateway's rate is "
            f"{100 * gateway.calls_per_second / fastest.calls_per_second:.0f}% of the best"
        )
        return GoalCheck(goal, measured, met)

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    def markdown(self) -> str:
        packages = self.machine.get("gateway_packages")
        served = ""
        if isinstance(packages, dict):
            served = ", served by " + ", ".join(
                f"{name} {packages.get(name) or 'absent'}" for name in SERVING
            )
        load = (self.machine.get("load_average_before"), self.machine.get("load_average_after"))
        node = f", Node {self.machine['node']}" if self.machine.get("node") else ""
        lines = [
            f"Run of {self.started}{' (quick)' if self.quick else ''}, {self.seconds:.0f} s; "
            f"{self.machine.get('cpus')} CPUs ({self.machine.get('cpu_model')}), "
            f"Python {self.machine.get('python')}{node}; "
            f"mcp-front at {self.machine.get('revision')}{served}; load average "
            f"{load[0]} before, {load[1]} after.",
            *(
                f"{key.removeprefix('gateway_packages ')} is served by "
                + ", ".join(f"{name} {value.get(name) or 'absent'}" for name in SERVING)
                + "."
                for key, value in self.machine.items()
                if key.startswith("gateway_packages ") and isinstance(value, dict)
            ),
            "",
            "`tools/call` round trip (`echo`), each worker its own session, one request at a time:",
            "",
            "| target | client | c | calls | p50 ms | p99 ms | calls/s |",
            "|---|---|--:|--:|--:|--:|--:|",
        ]
        for row in self.throughput:
            if row.result is None:
                lines.append(
                    f"| {row.target} | {row.client} | {row.concurrency} | {_failure(row.error)} | | | |"
                )
                continue
            r = row.result
            calls = f"{r.calls}{' (time limit)' if r.truncated else ''}"
            lines.append(
                f"| {row.target} | {row.client} | {row.concurrency} | {calls} | {r.p50_ms:.3f} | "
                f"{r.p99_ms:.3f} | {r.calls_per_second:.0f} |"
            )
        if self.first_result:
            lines += self._first_result_lines()
        if self.memory:
            lines += self._memory_lines()
        lines += ["", "Goals:", ""]
        for check in self.goals:
            verdict = {True: "met", False: "MISSED", None: "unknown"}[check.met]
            lines.append(f"- {check.goal}: **{verdict}**: {check.measured}")
        return "\n".join(lines)

    def _first_result_lines(self) -> list[str]:
        lines = [
            "",
            "Time from a new session's first request to its first tool result:",
            "",
            "| target | client | median ms | session open ms | p90 ms | min ms | max ms | samples | note |",
            "|---|---|--:|--:|--:|--:|--:|--:|---|",
        ]
        for first in self.first_result:
            if first.summary is None:
                lines.append(f"| {first.target} | {first.client} | {_failure(first.error)} | | | | | | |")
                continue
            s = first.summary
            opened = f"{s.open_median_ms:.1f}" if s.open_median_ms is not None else ""
            lines.append(
                f"| {first.target} | {first.client} | {s.median_ms:.1f} | {opened} | {s.p90_ms:.1f} | "
                f"{s.min_ms:.1f} | {s.max_ms:.1f} | {s.samples} | {first.note} |"
            )
        return lines

    def _memory_lines(self) -> list[str]:
        lines = [
            "",
            "Server memory per idle session (the server process only; its children not counted):",
            "",
            "| target | sessions | RSS before MiB | RSS after MiB | KiB per session | children (uncounted) |",
            "|---|--:|--:|--:|--:|---|",
        ]
        for mem in self.memory:
            if mem.result is None:
                lines.append(f"| {mem.target} | {_failure(mem.error)} | | | | |")
                continue
            m = mem.result
            note = f"; {mem.note}" if mem.note else ""
            children = f"{m.children} processes, {m.child_rss_mib:.0f} MiB{note}"
            lines.append(
                f"| {mem.target} | {m.sessions} | {m.rss_before_mib:.1f} | {m.rss_after_mib:.1f} | "
                f"{m.per_session_kib:.0f} | {children} |"
            )
        return lines


def _failure(error: str | None) -> str:
    return NOT_RUN if error in (None, NOT_RUN) else f"failed: {error}"

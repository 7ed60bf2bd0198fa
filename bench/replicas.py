"""Benchmark: several replicas on a shared store, against one replica on SQLite.

    python -m bench.replicas            # the full run (about ten minutes)
    python -m bench.replicas --quick    # a short smoke run

Every gateway runs at once (`mcp-front serve`, OAuth with a real `oidc-provider`, the
stdio demo server as the service): one replica on SQLite (the baseline), and one and two
replicas on Redis and on PostgreSQL. In alternating rounds, the same `tools/call` load is
sent to each case, split evenly between its replicas; the report gives calls per second
and latency per case, and the commands the store's server received during the load
divided by the calls made (Redis `total_commands_processed`, PostgreSQL `xact_commit`),
beside the same count over an idle period of the same length: the hot path's goal is no
store round trip at all.

Two more cases put one and two Redis replicas behind the tests' round-robin balancer
(`tests/support/balancer.py`, a Python proxy sending each request to the next replica):
with two, half of a session's requests reach the replica that does not hold it and are
forwarded to its owner. The one-replica case pays the same balancer, so the difference
between the two is what forwarding costs.

`/token` refresh grants per second on each store are measured by `bench.auth
--storage redis --storage postgres`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
from tests.support.balancer import round_robin

from bench import auth_http, runner, targets
from bench.auth_http import OAUTH_SERVICE
from bench.clients import socket_http_factory
from bench.measure import LoadSample, LoadSpec, percentile, run_load
from bench.processes import BenchError, ProcessSupervisor, free_port
from bench.stores import POSTGRES, BenchStores


@dataclass(frozen=True, slots=True)
class Settings:
    rounds: int
    calls: int
    concurrency: int
    warmup: int
    time_limit: float

    @classmethod
    def full(cls) -> Settings:
        return cls(rounds=4, calls=16000, concurrency=8, warmup=20, time_limit=60.0)

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=2, calls=300, concurrency=4, warmup=5, time_limit=20.0)


@dataclass
class Case:
    name: str
    storage: str
    replicas: int
    balanced: bool = False
    """Behind the round-robin balancer of the tests: each request to the next replica, so a
    session's requests mostly reach a replica that forwards them to the session's owner."""
    balancer_port: int = 0
    ports: list[int] = field(default_factory=list)
    storage_config: dict[str, str] = field(default_factory=dict)
    access_token: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    store_commands: int = 0
    store_window: float = 0.0
    """Seconds between the statistics read before and after each load, summed."""
    idle_commands: int = 0
    idle_seconds: float = 0.0

    @property
    def idle_rate(self) -> float:
        return self.idle_commands / self.idle_seconds if self.idle_seconds else 0.0

    def row(self) -> dict[str, Any]:
        values = sorted(self.latencies_ms)
        calls = len(values)
        return {
            "case": self.name,
            "calls": calls,
            "calls_per_second": calls / self.seconds if self.seconds else 0.0,
            "p50_ms": percentile(values, 0.5) if values else None,
            "p99_ms": percentile(values, 0.99) if values else None,
            "store_commands": self.store_commands,
            "store_commands_per_call": max(0.0, self.store_commands - self.idle_rate * self.store_window)
            / calls
            if calls
            else None,
            "idle_store_commands_per_second": self.idle_rate,
        }


@dataclass
class Report:
    settings: dict[str, Any]
    machine: dict[str, Any]
    started: str
    cases: list[Case] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [case.row() for case in self.cases]
        payload = {**asdict(self), "cases": rows}
        path.write_text(json.dumps(payload, indent=2))

    def markdown(self) -> str:
        lines = [
            f"## Replicas on a shared store ({self.started}, {self.seconds:.0f} s)",
            "",
            f"`tools/call` at concurrency {self.settings['concurrency']}, split between a case's replicas.",
            "",
            "Store commands per call: those the store's server received during the loads, less",
            "what the replicas send when idle (listener health checks), over the calls made.",
            "",
            "| case | calls/s | p50 ms | p99 ms | store commands per call | idle store commands/s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for case in self.cases:
            row = case.row()
            per_call = row["store_commands_per_call"]
            idle = row["idle_store_commands_per_second"]
            cells = [
                case.name,
                f"{row['calls_per_second']:.0f}",
                _ms(row["p50_ms"]),
                _ms(row["p99_ms"]),
                "-" if per_call is None else f"{per_call:.4f}",
                f"{idle:.2f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


class StoreCounter:
    """Commands a store's server has received so far, read from its own statistics."""

    def __init__(self, case: Case) -> None:
        self.case = case

    async def read(self) -> int:
        if self.case.storage == "redis":
            from redis.asyncio import Redis

            client = Redis.from_url(self.case.storage_config["url"])
            try:
                stats = await client.info("stats")
            finally:
                await client.aclose()
            return int(stats["total_commands_processed"])
        if self.case.storage == "postgres":
            import asyncpg

            # An idle backend reports its statistics within ten seconds, no sooner.
            await anyio.sleep(11.0)
            name = self.case.storage_config["url"].rsplit("/", 1)[1]
            connection = await asyncpg.connect(f"{POSTGRES}/postgres")
            try:
                value = await connection.fetchval(
                    "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", name
                )
            finally:
                await connection.close()
            return int(value)
        return 0


class Harness:
    def __init__(self, supervisor: ProcessSupervisor, settings: Settings, report: Report, logs: Path) -> None:
        self.supervisor = supervisor
        self.settings = settings
        self.report = report
        self.logs = logs
        self.stores = BenchStores(logs)

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    async def run(self) -> None:
        node = auth_http.node_binary()
        if node is None or not auth_http.OIDC_SCRIPT.exists():
            raise BenchError("Node.js and tests/node (npm ci --prefix tests/node) are needed")
        cases = [
            Case("SQLite, 1 replica (baseline)", "sqlite", 1),
            Case("Redis, 1 replica", "redis", 1),
            Case("Redis, 2 replicas", "redis", 2),
            Case("PostgreSQL, 1 replica", "postgres", 1),
            Case("PostgreSQL, 2 replicas", "postgres", 2),
            Case("Redis, 1 replica, behind a round-robin balancer", "redis", 1, balanced=True),
            Case("Redis, 2 replicas, behind a round-robin balancer", "redis", 2, balanced=True),
        ]
        self.report.cases = cases
        for case in cases:
            case.ports = [free_port() for _ in range(case.replicas)]
            case.storage_config = await self.stores.empty(case.storage)
        oidc_port = free_port()
        callbacks = [f"http://127.0.0.1:{case.ports[0]}/oauth/callback" for case in cases]
        self.supervisor.start_server(
            "oidc-provider",
            [node, str(auth_http.OIDC_SCRIPT)],
            port=oidc_port,
            env={**os.environ, **auth_http.oidc_env(oidc_port, callbacks)},
        )
        try:
            async with AsyncExitStack() as balancers:
                await self._measure(cases, oidc_port, balancers)
        finally:
            await self._drop_databases()

    async def _measure(self, cases: list[Case], oidc_port: int, balancers: AsyncExitStack) -> None:
        for case in cases:
            self._start(case, oidc_port)
            if case.balanced:
                case.balancer_port = free_port()
                replicas = [f"http://127.0.0.1:{port}" for port in case.ports]
                await balancers.enter_async_context(round_robin(case.balancer_port, replicas))
            url = f"http://127.0.0.1:{case.ports[0]}"
            client_id = await auth_http.register_client(url)
            case.access_token = (await auth_http.sign_in(url, client_id, OAUTH_SERVICE)).access_token
        for case in cases:
            await self._idle(case)
        for round_index in range(self.settings.rounds):
            order = cases if round_index % 2 == 0 else list(reversed(cases))
            for case in order:
                self.log(f"round {round_index + 1}/{self.settings.rounds}: {case.name}")
                await self._load(case)

    async def _drop_databases(self) -> None:
        with anyio.CancelScope(shield=True):
            self.supervisor.close()
            await self.stores.drop()

    def _start(self, case: Case, oidc_port: int) -> None:
        first = case.ports[0]
        for number, port in enumerate(case.ports):
            config = auth_http.gateway_config(first, storage=case.storage_config, oidc_port=oidc_port)
            # Every replica answers for the deployment's one URL, on an address of its own.
            config["proxy"]["addr"] = f"127.0.0.1:{port}"
            name = f"gateway-{case.storage}-{case.replicas}x-{number}"
            path = auth_http.write_config(self.logs, name, config)
            self.supervisor.start_server(
                name, [*targets.gateway_command(), "serve", "--config", str(path)], port=port
            )

    async def _idle(self, case: Case) -> None:
        counter = StoreCounter(case)
        before = await counter.read()
        started = time.monotonic()
        await anyio.sleep(10.0)
        after = await counter.read()
        case.idle_seconds += time.monotonic() - started
        case.idle_commands += max(0, after - before - 1)  # not the statistics read itself

    async def _load(self, case: Case) -> None:
        s = self.settings
        entrances = 1 if case.balanced else case.replicas
        per_replica = max(1, s.concurrency // entrances)
        headers = {"authorization": f"Bearer {case.access_token}"}
        counter = StoreCounter(case)
        before = await counter.read()
        started = time.monotonic()
        samples: list[LoadSample] = []

        async def replica_load(port: int) -> None:
            factory = socket_http_factory("127.0.0.1", port, f"/{OAUTH_SERVICE}/mcp", headers)
            calls = s.calls // entrances
            spec = LoadSpec(calls=calls, concurrency=per_replica, warmup=s.warmup, time_limit=s.time_limit)
            samples.append(await run_load(factory, spec))

        async with anyio.create_task_group() as group:
            for port in [case.balancer_port] if case.balanced else case.ports:
                group.start_soon(replica_load, port)
        after = await counter.read()
        case.store_window += time.monotonic() - started
        case.store_commands += max(0, after - before - 1)
        case.latencies_ms += [v * 1000 for sample in samples for v in sample.latencies]
        # The replicas ran side by side: the case's time is the longest of theirs.
        case.seconds += max(sample.seconds for sample in samples)


def main(argv: list[str] | None = None) -> int:
    args = runner.parser("replicas", __doc__, "a short smoke run").parse_args(argv)
    settings = Settings.quick() if args.quick else Settings.full()
    run = runner.BenchRun.begin("replicas", args.output, "replicas-logs")

    def prepare(supervisor: ProcessSupervisor) -> tuple[Report, Any]:
        report = Report(settings=asdict(settings), machine={"cpus": os.cpu_count()}, started=run.started_text)
        return report, Harness(supervisor, settings, report, run.logs).run

    return run.execute(prepare)


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: what each user's own credential costs, against the same work without one.

    python -m bench.credentials            # the full run (about a minute)
    python -m bench.credentials --quick    # a short smoke run

Two measurements, each side by side with its baseline in alternating rounds:

* **a `tools/call` on an HTTP backend, in process**: what the gateway adds to a call for
  a service with `requiresUserToken` (the credential gate, the vault lookup, the
  `$userToken` header rendered with `tokenFormat`), against rendering the same header
  from a static value, with the vault in memory and in SQLite; it also counts the
  store's reads once warm (the goal is none);
* **a stdio session's start**: the time from spawning `examples/demo_server.py` to its
  `initialize` answer, sandboxed by bubblewrap and not;
* **an inline command tool's call**, in process through `InlineUpstream`: `date -u` run
  for each `tools/call`, in its sandbox and with the service's `sandbox` off.

It prints a markdown summary and writes every number to `bench/results/credentials-<time>.json`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

from bench import runner
from bench.measure import percentile
from mcp_front.auth.principal import Principal
from mcp_front.backends.credential_gate import CredentialGate
from mcp_front.backends.inline import InlineToolRegistry
from mcp_front.backends.sandbox import Bubblewrap
from mcp_front.backends.session import BackendSession
from mcp_front.config import SandboxConfig, ServerConfig
from mcp_front.credentials import Credential, CredentialVault
from mcp_front.credentials.injection import UserCredentials
from mcp_front.crypto import Keyring
from mcp_front.protocol.jsonrpc import Message
from mcp_front.storage import MemoryStore, SQLiteStore, Store

DEMO_SERVER = Path(__file__).resolve().parents[1] / "examples" / "demo_server.py"
ADA = Principal(subject="sub-ada", email="ada@example.com")
SERVICE = "notion"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "b", "version": "1"},
    },
}


@dataclass(frozen=True, slots=True)
class Settings:
    rounds: int
    calls: int
    spawns: int

    @classmethod
    def full(cls) -> Settings:
        return cls(rounds=5, calls=20000, spawns=30)

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=2, calls=2000, spawns=6)


@dataclass
class Case:
    name: str
    samples_us: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.samples_us)
        return {
            "p50_us": percentile(ordered, 0.5),
            "p99_us": percentile(ordered, 0.99),
            "calls": len(ordered),
        }


@dataclass
class Report:
    started: str
    quick: bool
    settings: dict[str, Any]
    machine: dict[str, Any] = field(default_factory=dict)
    calls: dict[str, dict[str, float]] = field(default_factory=dict)
    store_reads_when_warm: dict[str, int] = field(default_factory=dict)
    spawns_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    command_calls_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    interrupted: bool = False

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    def markdown(self) -> str:
        lines = [
            f"Run of {self.started}{' (quick)' if self.quick else ''}, {self.seconds:.0f} s; "
            f"load average {self.machine.get('load_average_before')} before.",
            "",
            "What the gateway adds to a `tools/call`, in process (µs per call):",
            "",
            "| case | p50 µs | p99 µs | calls |",
            "|---|--:|--:|--:|",
        ]
        for name, figures in self.calls.items():
            lines.append(
                f"| {name} | {figures['p50_us']:.2f} | {figures['p99_us']:.2f} | {figures['calls']:.0f} |"
            )
        lines += ["", f"Store reads during the warm calls: {self.store_reads_when_warm}", ""]
        lines += ["A stdio session's start, spawn to `initialize` answer (ms):", ""]
        lines += ["| case | median ms | p90 ms | samples |", "|---|--:|--:|--:|"]
        for name, figures in self.spawns_ms.items():
            lines.append(
                f"| {name} | {figures['median']:.1f} | {figures['p90']:.1f} | {figures['samples']:.0f} |"
            )
        lines += ["", "An inline command tool's `tools/call` (ms):", ""]
        lines += ["| case | median ms | p90 ms | samples |", "|---|--:|--:|--:|"]
        for name, figures in self.command_calls_ms.items():
            lines.append(
                f"| {name} | {figures['median']:.1f} | {figures['p90']:.1f} | {figures['samples']:.0f} |"
            )
        return "\n".join(lines)


class CountingStore:
    """A store that counts its reads."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get(self, namespace: str, key: str) -> bytes | None:
        self.reads += 1
        return await self.inner.get(namespace, key)


class Backend:
    """Answers a tool call with the header it would send: the work of rendering it is the
    gateway's, the rest is constant."""

    def __init__(self, session: BackendSession) -> None:
        self.session = session

    async def request(self, message: Message, related: Any) -> Message:
        headers = await self.session.render_all(self.session.server.headers)
        return {"jsonrpc": "2.0", "id": message["id"], "result": {"content": [], "sent": len(headers)}}

    async def notify(self, message: Message) -> None: ...

    async def respond(self, message: Message) -> None: ...

    async def aclose(self) -> None: ...


def server_config(personal: bool) -> ServerConfig:
    header: Any = {"$userToken": "{{token}}"} if personal else "Bearer static-token"
    extra: dict[str, Any] = {}
    if personal:
        extra = {
            "requiresUserToken": True,
            "userAuthentication": {
                "type": "manual",
                "displayName": "Notion",
                "instructions": "Paste it.",
                "tokenFormat": "Bearer {{token}}",
            },
        }
    return ServerConfig.model_validate(
        {
            "transportType": "streamable-http",
            "url": "http://127.0.0.1:9/mcp",
            "headers": {"Authorization": header},
            **extra,
        }
    )


async def time_calls(upstream: Any, calls: int) -> list[float]:
    async def discard(message: Message) -> None:
        return None

    samples = []
    for index in range(calls):
        message = {"jsonrpc": "2.0", "id": index, "method": "tools/call", "params": {"name": "echo"}}
        started = time.perf_counter_ns()
        await upstream.request(message, discard)
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


async def measure_calls(report: Report, settings: Settings) -> None:
    plain_server, personal_server = server_config(False), server_config(True)
    with tempfile.TemporaryDirectory() as scratch:
        async with SQLiteStore.open(Path(scratch) / "bench.sqlite3") as sqlite:
            stores = {"memory": CountingStore(MemoryStore()), "sqlite": CountingStore(sqlite)}
            keyring = Keyring([bytes(range(32))])
            plain = Backend(BackendSession(SERVICE, plain_server, ADA, None))
            cases = {"static header (baseline)": Case("static header (baseline)")}
            upstreams: dict[str, Any] = {"static header (baseline)": plain}
            for name, store in stores.items():
                vault = CredentialVault(store, keyring)  # type: ignore[arg-type]
                await vault.put(ADA.key, Credential(SERVICE, "manual", "ntn_personal_token", time.time()))
                tokens = UserCredentials(vault, {SERVICE: personal_server})
                backend = Backend(BackendSession(SERVICE, personal_server, ADA, tokens))
                gate = CredentialGate(
                    backend,
                    service=SERVICE,
                    display_name="Notion",
                    principal=ADA,
                    user_tokens=tokens,
                    base_url="http://127.0.0.1:9",
                )
                label = f"own credential, vault in {name}"
                cases[label] = Case(label)
                upstreams[label] = gate
            for upstream in upstreams.values():
                await time_calls(upstream, 200)  # warm: the vault's cache is filled
            for store in stores.values():
                store.reads = 0
            per_round = max(1, settings.calls // settings.rounds)
            for _ in range(settings.rounds):
                for label, upstream in upstreams.items():
                    cases[label].samples_us += await time_calls(upstream, per_round)
            report.store_reads_when_warm = {name: store.reads for name, store in stores.items()}
    report.calls = {label: case.summary() for label, case in cases.items()}


def spawn_ms(argv: list[str]) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    process.stdin.flush()
    process.stdout.readline()
    elapsed = (time.perf_counter() - started) * 1000
    process.stdin.close()
    process.wait(timeout=30)
    return elapsed


async def measure_spawns(report: Report, settings: Settings) -> None:
    sandbox = Bubblewrap()
    check = await sandbox.check()
    argv = [sys.executable, str(DEMO_SERVER)]
    cases: dict[str, list[float]] = {"unsandboxed": []}
    if check.available:
        cases["sandboxed (bubblewrap)"] = []
    else:
        report.machine["sandbox"] = check.problem
    for _ in range(settings.spawns):
        cases["unsandboxed"].append(await anyio.to_thread.run_sync(spawn_ms, argv))
        if check.available:
            wrapped = sandbox.command(argv, SandboxConfig(), cwd=None)
            cases["sandboxed (bubblewrap)"].append(await anyio.to_thread.run_sync(spawn_ms, wrapped))
    report.spawns_ms = _milliseconds(cases)


def _milliseconds(cases: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "median": statistics.median(values),
            "p90": percentile(sorted(values), 0.9),
            "samples": len(values),
        }
        for name, values in cases.items()
    }


async def measure_command_calls(report: Report, settings: Settings) -> None:
    tools = {"tools": [{"name": "utc", "command": "date", "args": ["-u"]}]}
    services = {
        "sandboxed (bubblewrap)": ServerConfig.model_validate({"transportType": "inline", "inline": tools}),
        "unsandboxed": ServerConfig.model_validate(
            {"transportType": "inline", "inline": tools, "sandbox": {"enabled": False}}
        ),
    }
    registry = InlineToolRegistry(services)
    if not (await registry.sandbox.check()).available:
        del services["sandboxed (bubblewrap)"]
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "utc", "arguments": {}}}

    async def discard(message: Message) -> None:
        pass

    cases: dict[str, list[float]] = {name: [] for name in services}
    try:
        upstreams = {name: await registry.open(name, ADA, discard) for name in services}
        for _ in range(settings.spawns):
            for name, upstream in upstreams.items():
                started = time.perf_counter()
                answer = await upstream.request(call, discard)
                cases[name].append((time.perf_counter() - started) * 1000)
                assert answer["result"]["isError"] is False, answer
    finally:
        await registry.aclose()
    report.command_calls_ms = _milliseconds(cases)


def main(argv: list[str] | None = None) -> int:
    parser = runner.parser("credentials", __doc__, "a short smoke run")
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings.full()
    run = runner.BenchRun.begin("credentials", args.output, "logs-credentials")

    def prepare(supervisor: Any) -> tuple[Report, Any]:
        report = Report(started=run.started_text, quick=args.quick, settings=asdict(settings))

        async def work() -> None:
            await measure_calls(report, settings)
            await measure_spawns(report, settings)
            await measure_command_calls(report, settings)

        return report, work

    return run.execute(prepare)


if __name__ == "__main__":
    sys.exit(main())

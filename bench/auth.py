"""Authorization benchmark: token verification, `/token` rate, what `ResourceGuard` adds.

Three parts, in one run:

1. In process: `TokenIssuer.verify_access_token` (warm, cold key, never-seen tokens),
   `AccessTokenVerifier.verify` with its revocation cache warm and cold, and
   `ResourceGuard` over an ASGI app that does nothing.
2. `/token` requests per second on a real `mcp-front serve` with OAuth (memory and
   SQLite storage; Redis and PostgreSQL with `--storage`), `refresh_token` grants at
   concurrency 1 and 10, each worker rotating a family of its own. (An
   `authorization_code` grant needs the browser leg every time, so it is used only to
   start the families.)
3. The same `tools/call` through the gateway with an OAuth access token, a static bearer
   token and no auth at all, in interleaved rounds, with the same client.

Run: `python -m bench.auth` (about 90 s) or `python -m bench.auth --quick`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path

import anyio

from bench import auth_http, auth_micro, stores, targets
from bench.auth_http import ANONYMOUS_SERVICE, OAUTH_SERVICE, STATIC_SERVICE, STATIC_TOKEN
from bench.auth_micro import MicroResult, MicroSettings
from bench.clients import socket_http_factory
from bench.measure import LoadResult, LoadSample, LoadSpec, percentile, run_load
from bench.processes import BenchError, ProcessSupervisor, free_port, ignoring_interrupts
from bench.runner import RESULTS_DIR, until_sigterm

BUSY_LOAD_AVERAGE = 1.0
GOAL_US = 100.0


@dataclass(frozen=True, slots=True)
class Settings:
    micro: MicroSettings
    token_calls: dict[int, int]
    """Timed `/token` requests per concurrency, pooled over the rounds."""
    token_warmup: int
    token_rounds: int
    guard_calls: int
    """Timed `tools/call` requests per case, pooled over the rounds."""
    guard_warmup: int
    guard_rounds: int
    time_limit: float
    """Seconds one measurement round may take."""

    @classmethod
    def full(cls) -> Settings:
        return cls(MicroSettings(20_000, 1000, 30.0), {1: 2000, 10: 4000}, 5, 2, 3000, 100, 6, 30.0)

    @classmethod
    def quick(cls) -> Settings:
        return cls(MicroSettings(3000, 200, 10.0), {1: 300, 10: 600}, 2, 1, 600, 50, 2, 15.0)


@dataclass(slots=True)
class TokenRow:
    storage: str
    concurrency: int
    requests: int
    p50_ms: float
    p99_ms: float
    requests_per_second: float
    truncated: bool


@dataclass(slots=True)
class GuardRow:
    case: str
    process: str
    result: LoadResult


@dataclass(slots=True)
class Report:
    started: str
    quick: bool
    machine: dict[str, object]
    settings: dict[str, object]
    seconds: float = 0.0
    interrupted: bool = False
    micro: list[MicroResult] = field(default_factory=list)
    tokens: list[TokenRow] = field(default_factory=list)
    guard: list[GuardRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def micro_p50(self, name: str) -> float | None:
        return next((m.p50_us for m in self.micro if m.name == name), None)

    def guard_p50_us(self, case: str) -> float | None:
        return next((1000 * g.result.p50_ms for g in self.guard if g.case == case), None)

    def differences(self) -> list[tuple[str, float]]:
        """What each kind of auth adds at p50, in µs: (label, difference)."""
        pairs = [
            ("OAuth token − no auth (the whole guard with OAuth; two processes)", OAUTH_CASE, ANON_CASE),
            ("static bearer − no auth (same no-auth process)", STATIC_PLAIN_CASE, ANON_CASE),
            ("OAuth token − static bearer (same OAuth process)", OAUTH_CASE, STATIC_OAUTH_CASE),
            (
                "static bearer, OAuth process − static bearer, no-auth process",
                STATIC_OAUTH_CASE,
                STATIC_PLAIN_CASE,
            ),
        ]
        found = []
        for label, left, right in pairs:
            a, b = self.guard_p50_us(left), self.guard_p50_us(right)
            if a is not None and b is not None:
                found.append((label, a - b))
        return found

    def markdown(self) -> str:
        m = self.machine
        lines = [
            f"Run of {self.started}{' (quick)' if self.quick else ''}, {self.seconds:.0f} s; "
            f"{m.get('cpus')} CPUs ({m.get('cpu_model')}), Python {m.get('python')}, "
            f"mcp-front at {m.get('revision')}; "
            f"PyJWT {m.get('pyjwt')}, cryptography {m.get('cryptography')}; load average "
            f"{m.get('load_average_before')} before, {m.get('load_average_after')} after.",
            "",
            "In process (µs per call):",
            "",
            "| case | what | calls | p50 µs | p99 µs |",
            "|---|---|--:|--:|--:|",
        ]
        for r in self.micro:
            cut = " (time limit)" if r.truncated else ""
            lines.append(f"| {r.name} | {r.what} | {r.calls}{cut} | {r.p50_us:.1f} | {r.p99_us:.1f} |")
        guard_cost = self._pure_guard_cost()
        if guard_cost is not None:
            lines += [
                "",
                f"ResourceGuard's own cost with an OAuth token, in process: {guard_cost:.1f} µs at p50.",
            ]
        lines += [
            "",
            "`/token` with `grant_type=refresh_token`, each worker rotating its own family:",
            "",
            "| storage | c | requests | p50 ms | p99 ms | requests/s |",
            "|---|--:|--:|--:|--:|--:|",
        ]
        for t in self.tokens:
            cut = " (time limit)" if t.truncated else ""
            lines.append(
                f"| {t.storage} | {t.concurrency} | {t.requests}{cut} | {t.p50_ms:.3f} | {t.p99_ms:.3f} | "
                f"{t.requests_per_second:.0f} |"
            )
        lines += [
            "",
            "`tools/call` (`echo`) through the gateway, single-write socket client, c=1, interleaved rounds:",
            "",
            "| auth | gateway process | calls | p50 ms | p99 ms | calls/s |",
            "|---|---|--:|--:|--:|--:|",
        ]
        for g in self.guard:
            load = g.result
            cut = " (time limit)" if load.truncated else ""
            lines.append(
                f"| {g.case} | {g.process} | {load.calls}{cut} | {load.p50_ms:.3f} | {load.p99_ms:.3f} | "
                f"{load.calls_per_second:.0f} |"
            )
        lines += ["", "Differences at p50:", ""]
        lines += [f"- {label}: {diff:+.0f} µs" for label, diff in self.differences()]
        lines += ["", "Goal (ResourceGuard adds under 100 µs at p50):", ""]
        lines += [f"- {text}" for text in self.goal_lines()]
        lines += [f"- note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _pure_guard_cost(self) -> float | None:
        guarded, bare = self.micro_p50("guard, OAuth access token"), self.micro_p50("no guard")
        return None if guarded is None or bare is None else guarded - bare

    def goal_lines(self) -> list[str]:
        out = []
        pure = self._pure_guard_cost()
        if pure is not None:
            out.append(f"in process, OAuth token: {pure:.1f} µs: **{_verdict(pure)}**")
            static = self.micro_p50("guard, static bearer")
            bare = self.micro_p50("no guard")
            if static is not None and bare is not None:
                cost = static - bare
                out.append(f"in process, static bearer: {cost:.1f} µs: **{_verdict(cost)}**")
        for label, diff in self.differences()[:2]:
            out.append(f"over HTTP, {label}: {diff:.0f} µs: **{_verdict(diff)}**")
        return out


def _verdict(added_us: float) -> str:
    return "met" if added_us < GOAL_US else "MISSED"


OAUTH_CASE = "OAuth access token"
STATIC_OAUTH_CASE = "static bearer (OAuth on)"
STATIC_PLAIN_CASE = "static bearer (OAuth off)"
ANON_CASE = "none (anonymous service)"


@dataclass(slots=True)
class Gateways:
    oauth: dict[str, int]
    """OAuth gateways' ports by storage."""
    plain: int
    oidc: int


class Harness:
    def __init__(self, supervisor: ProcessSupervisor, settings: Settings, report: Report, logs: Path) -> None:
        self.supervisor = supervisor
        self.settings = settings
        self.report = report
        self.logs = logs
        self.stores = stores.BenchStores(logs)

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    async def run(self, storages: list[str]) -> None:
        self.log("in-process microbenchmarks")
        self.report.micro += auth_micro.token_verification(self.settings.micro)
        self.report.micro += await auth_micro.verifier_cache(self.settings.micro)
        self.report.micro += await auth_micro.resource_guard(self.settings.micro)

        node = auth_http.node_binary()
        if node is None or not auth_http.OIDC_SCRIPT.exists():
            raise BenchError(
                "Node.js and tests/node (npm ci --prefix tests/node) are needed for the OAuth parts"
            )
        ports = Gateways({storage: free_port() for storage in storages}, free_port(), free_port())
        callbacks = [f"http://127.0.0.1:{port}/oauth/callback" for port in ports.oauth.values()]
        self.log("starting the identity provider and the gateways")
        self.supervisor.start_server(
            "oidc-provider",
            [node, str(auth_http.OIDC_SCRIPT)],
            port=ports.oidc,
            env={**os.environ, **auth_http.oidc_env(ports.oidc, callbacks)},
        )
        for storage, port in ports.oauth.items():
            backend = await self.stores.empty(storage)
            self._start_gateway(
                f"gateway-oauth-{storage}",
                port,
                auth_http.gateway_config(port, storage=backend, oidc_port=ports.oidc),
            )
        self._start_gateway(
            "gateway-plain", ports.plain, auth_http.gateway_config(ports.plain, storage=None, oidc_port=None)
        )

        families: dict[str, tuple[str, list[auth_http.Tokens]]] = {}
        workers = max(self.settings.token_calls)
        for storage, port in ports.oauth.items():
            url = f"http://127.0.0.1:{port}"
            self.log(f"{storage}: registering a client and signing in {workers} times")
            client_id = await auth_http.register_client(url)
            signed = [await auth_http.sign_in(url, client_id, OAUTH_SERVICE) for _ in range(workers)]
            families[storage] = (client_id, signed)

        first_storage = storages[0]
        access = families[first_storage][1][0].access_token
        try:
            await self.guard_rounds(ports.oauth[first_storage], ports.plain, access, first_storage)
            await self.token_rounds(ports, families)
        finally:
            with anyio.CancelScope(shield=True):
                self.supervisor.close()
                await self.stores.drop()

    def _start_gateway(self, name: str, port: int, config: dict[str, object]) -> None:
        path = auth_http.write_config(self.logs, name, config)
        self.supervisor.start_server(
            name, [*targets.gateway_command(), "serve", "--config", str(path)], port=port
        )

    async def guard_rounds(self, oauth_port: int, plain_port: int, access_token: str, storage: str) -> None:
        cases = [
            (OAUTH_CASE, f"OAuth on ({storage})", oauth_port, OAUTH_SERVICE, f"Bearer {access_token}"),
            (
                STATIC_OAUTH_CASE,
                f"OAuth on ({storage})",
                oauth_port,
                STATIC_SERVICE,
                f"Bearer {STATIC_TOKEN}",
            ),
            (STATIC_PLAIN_CASE, "OAuth off", plain_port, STATIC_SERVICE, f"Bearer {STATIC_TOKEN}"),
            (ANON_CASE, "OAuth off", plain_port, ANONYMOUS_SERVICE, None),
        ]
        s = self.settings
        per_round = max(1, s.guard_calls // s.guard_rounds)
        spec = LoadSpec(calls=per_round, concurrency=1, warmup=s.guard_warmup, time_limit=s.time_limit)
        samples: dict[str, list[LoadSample]] = {case[0]: [] for case in cases}
        for round_index in range(s.guard_rounds):
            self.log(f"tools/call round {round_index + 1}/{s.guard_rounds}")
            order = cases if round_index % 2 == 0 else list(reversed(cases))
            for name, _process, port, service, authorization in order:
                headers = {"authorization": authorization} if authorization else {}
                factory = socket_http_factory("127.0.0.1", port, f"/{service}/mcp", headers)
                samples[name].append(await run_load(factory, spec))
        for name, process, *_ in cases:
            self.report.guard.append(GuardRow(name, process, LoadResult.merge(1, samples[name])))

    async def token_rounds(
        self, ports: Gateways, families: dict[str, tuple[str, list[auth_http.Tokens]]]
    ) -> None:
        s = self.settings
        current = {storage: [t.refresh_token for t in signed] for storage, (_, signed) in families.items()}
        pooled: dict[tuple[str, int], list[auth_http.RefreshSample]] = {}
        for round_index in range(s.token_rounds):
            for storage, port in ports.oauth.items():
                client_id = families[storage][0]
                for concurrency, calls in s.token_calls.items():
                    self.log(f"/token round {round_index + 1}/{s.token_rounds}: {storage}, c={concurrency}")
                    tokens = current[storage][:concurrency]
                    sample, rotated = await auth_http.refresh_load(
                        f"http://127.0.0.1:{port}",
                        client_id,
                        tokens,
                        calls // s.token_rounds,
                        s.token_warmup,
                        s.time_limit,
                    )
                    current[storage][:concurrency] = rotated
                    pooled.setdefault((storage, concurrency), []).append(sample)
        for (storage, concurrency), runs in pooled.items():
            values = sorted(v * 1000 for run in runs for v in run.latencies)
            seconds = sum(run.seconds for run in runs)
            self.report.tokens.append(
                TokenRow(
                    storage=storage,
                    concurrency=concurrency,
                    requests=len(values),
                    p50_ms=percentile(values, 0.5),
                    p99_ms=percentile(values, 0.99),
                    requests_per_second=len(values) / seconds,
                    truncated=any(run.truncated for run in runs),
                )
            )


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _machine() -> dict[str, object]:
    info = targets.machine_info(None, None)
    versions = info.get("versions")
    if isinstance(versions, dict):
        info["versions"] = {k: v for k, v in versions.items() if k not in ("supergateway", "mcp-proxy")}
    info.pop("node", None)
    info["pyjwt"] = _version("PyJWT")
    info["cryptography"] = _version("cryptography")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.auth", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (under a minute)")
    parser.add_argument("--output", type=Path, help="the JSON results file (default: bench/results/…)")
    parser.add_argument("--no-sqlite", action="store_true", help="measure /token with memory storage only")
    parser.add_argument(
        "--storage",
        action="append",
        choices=stores.KINDS,
        help="measure /token on this storage too (repeatable: --storage redis --storage postgres)",
    )
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings.full()
    storages = ["memory"] if args.no_sqlite else ["memory", "sqlite"]
    storages += [kind for kind in args.storage or [] if kind not in storages]
    started = datetime.now(UTC)
    output: Path = args.output or RESULTS_DIR / f"auth-{started:%Y%m%dT%H%M%SZ}.json"
    logs = RESULTS_DIR / "logs-auth"
    logs.mkdir(parents=True, exist_ok=True)
    for stale in logs.iterdir():
        if stale.is_file():
            stale.unlink()
    load_before = os.getloadavg()[0]
    if load_before > BUSY_LOAD_AVERAGE:
        print(f"warning: load average {load_before:.2f}: other work will skew the numbers", file=sys.stderr)
    machine = _machine()
    machine["load_average_before"] = round(load_before, 2)
    report = Report(
        started=started.isoformat(timespec="seconds"),
        quick=args.quick,
        machine=machine,
        settings=asdict(settings),
    )
    supervisor = ProcessSupervisor(logs)
    clock = time.monotonic()
    try:
        harness = Harness(supervisor, settings, report, logs)
        report.interrupted = anyio.run(until_sigterm, partial(harness.run, storages))
    except KeyboardInterrupt:
        report.interrupted = True
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        report.notes.append(f"stopped early: {exc}")
        report.interrupted = True
    finally:
        with ignoring_interrupts():
            supervisor.close()
    report.machine["load_average_after"] = round(os.getloadavg()[0], 2)
    report.seconds = time.monotonic() - clock
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(asdict(report), indent=2) + "\n")
    if report.interrupted:
        print("**Interrupted: partial results.**\n")
    print(report.markdown())
    print(f"\nRaw results: {output}")
    return 130 if report.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())

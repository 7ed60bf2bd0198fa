"""`mcp-front` as a real process: serve, logs, signals, the Go-style flags, validate and init."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx2
import psutil
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_front import __version__
from tests.servers.conformance import (
    NODE_MODULES,
    NODE_PROJECT,
    node_environment,
    running_server,
)
from tests.support.clients import Transport, auth_headers, connect, text_of
from tests.support.gateway import UNSANDBOXED, bearer, stdio_service
from tests.support.net import free_port
from tests.support.process import gateway_process, survivors, write_config
from tests.support.raw import ACCEPT, RawSession, initialize_message

pytestmark = pytest.mark.e2e

TOKEN = "cli-test-token"
USER = "ci@example.com"
COMMAND_TIMEOUT = 60.0
LOG_TIMEOUT = 10.0
GRACEFUL_EXIT_SECONDS = 4.0
"""How long `serve` may take to stop on a signal with sessions open (uvicorn's own limit is 5 s)."""

CLI = [sys.executable, "-m", "mcp_front.cli"]
CONSOLE_SCRIPT = Path(sys.executable).with_name("mcp-front")
TRANSPORTS: list[tuple[Transport, str]] = [("streamable-http", "mcp"), ("sse", "sse")]
FILESYSTEM_SERVER = NODE_MODULES / "@modelcontextprotocol" / "server-filesystem" / "package.json"

_T = TypeVar("_T")


# -- helpers ------------------------------------------------------------------------------


def run_cli(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def environment_without(*names: str) -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in names}


async def poll(condition: Callable[[], _T | None], *, timeout: float, failure: Callable[[], str]) -> _T:
    """The first truthy value of `condition()`, checked every 50 ms for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(failure())
        await anyio.sleep(0.05)


@dataclass(frozen=True)
class AccessEntry:
    method: str
    path: str
    status: int
    service: str
    principal: str


@dataclass(frozen=True)
class AccessLine:
    entry: AccessEntry
    duration_ms: float


_TEXT_ACCESS = re.compile(
    r" INFO +mcp_front\.access: (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) "
    r"(?P<duration>\d+\.\d{2})ms service=(?P<service>\S+) principal=(?P<principal>\S+)$"
)


def text_access_lines(log: str) -> list[AccessLine]:
    found = []
    for line in log.splitlines():
        match = _TEXT_ACCESS.search(line)
        if match is not None:
            entry = AccessEntry(
                match["method"], match["path"], int(match["status"]), match["service"], match["principal"]
            )
            found.append(AccessLine(entry, float(match["duration"])))
    return found


def json_records(log: str) -> list[dict[str, Any]]:
    """Every line of a `--log-format json` log, each one a JSON object."""
    return [json.loads(line) for line in log.splitlines() if line.strip()]


def json_access_lines(log: str) -> list[AccessLine]:
    found = []
    for record in json_records(log):
        if record["logger"] == "mcp_front.access":
            entry = AccessEntry(
                record["method"], record["path"], record["status"], record["service"], record["principal"]
            )
            found.append(AccessLine(entry, record["duration_ms"]))
    return found


ACCESS_PARSERS: dict[str, Callable[[str], list[AccessLine]]] = {
    "text": text_access_lines,
    "json": json_access_lines,
}


@contextlib.asynccontextmanager
async def recording_client(url: str, token: str, seen: list[AccessEntry]) -> AsyncIterator[Client]:
    """An SDK client on `url` whose every HTTP exchange is appended to `seen`, as the log should show it."""

    async def on_response(response: httpx2.Response) -> None:
        request = response.request
        seen.append(AccessEntry(request.method, request.url.path, response.status_code, "probe", USER))

    async with (
        httpx2.AsyncClient(
            headers=auth_headers(token),
            timeout=httpx2.Timeout(30.0, read=300.0),
            event_hooks={"response": [on_response]},
        ) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        yield client


def probe_service() -> dict[str, Any]:
    return stdio_service(serviceAuths=[bearer(TOKEN, user=USER)], sandbox=UNSANDBOXED)


# -- serve ----------------------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_serve_proxies_a_session_and_logs_one_access_line_per_request(
    tmp_path: Path, log_format: str
) -> None:
    parse = ACCESS_PARSERS[log_format]
    expected: list[AccessEntry] = []
    with gateway_process(
        tmp_path, {"probe": probe_service()}, extra_args=("--log-format", log_format)
    ) as gateway:
        async with httpx2.AsyncClient(base_url=gateway.url) as http:
            health = await http.get("/health")
            assert health.status_code == 200
            assert health.json() == {"status": "ok"}
            expected.append(AccessEntry("GET", "/health", 200, "-", "-"))
            refused = await http.post("/probe/mcp", json=initialize_message(), headers=auth_headers("wrong"))
            assert refused.status_code == 401
            expected.append(AccessEntry("POST", "/probe/mcp", 401, "probe", "-"))

        async with recording_client(f"{gateway.url}/probe/mcp", TOKEN, expected) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"pid", "echo", "sleep"} <= tools
            assert text_of(await client.call_tool("echo", {"text": "from the CLI"})) == "from the CLI"
            assert text_of(await client.call_tool("sleep", {"seconds": 0.2})) == "slept 0.2"

        def all_logged() -> list[AccessLine] | None:
            found = parse(gateway.log())
            return found if len(found) >= len(expected) else None

        # Each line is written when its request ends: the session's GET stream ends last.
        lines = await poll(
            all_logged,
            timeout=LOG_TIMEOUT,
            failure=lambda: f"expected {len(expected)} access lines:\n{gateway.log()}",
        )
        log = gateway.log()

    assert Counter(line.entry for line in lines) == Counter(expected), log
    assert {"POST", "GET", "DELETE"} <= {line.entry.method for line in lines}
    assert all(line.duration_ms >= 0 for line in lines)
    # The client's requests were sequential, so the last answered POST is the call that slept.
    answered_posts = [line for line in lines if line.entry.method == "POST" and line.entry.status == 200]
    assert answered_posts[-1].duration_ms >= 200
    if log_format == "json":
        records = json_records(log)  # every line of the log, or this fails
        assert {"time", "level", "logger", "message"} <= set(records[0])
        assert any(record["logger"] == "mcp_front.gateway" for record in records)


async def test_serve_speaks_both_transports_to_one_service(tmp_path: Path) -> None:
    with gateway_process(tmp_path, {"probe": probe_service()}) as gateway:
        for transport, endpoint in TRANSPORTS:
            url = f"{gateway.url}/probe/{endpoint}"
            async with connect(url, token=TOKEN, transport=transport) as client:
                assert text_of(await client.call_tool("env", {"name": "MCP_FRONT_TOKEN"})) == "<unset>"
                assert text_of(await client.call_tool("echo", {"text": transport})) == transport


CAPABILITIES_DROPPED = ["setpriv", "--bounding-set=-all", "--"] if os.geteuid() == 0 else []
"""Where the tests run as root: a process run as a user of its own would be, without
capabilities (with them, root reads any process's /proc files)."""


async def test_serve_keeps_its_environment_from_an_unsandboxed_child(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, {"probe": probe_service()}, port)
    command = [*CAPABILITIES_DROPPED, sys.executable, "-m", "mcp_front.cli", "serve", "--config", str(config)]
    # Another process of the same user, as open to the child as the gateway was.
    bystander = subprocess.Popen([*CAPABILITIES_DROPPED, "sleep", "300"])
    try:
        with running_server(
            command, port=port, url=f"http://127.0.0.1:{port}", log_path=tmp_path / "gateway.log"
        ) as gateway:
            async with connect(f"{gateway.url}/probe/mcp", token=TOKEN) as client:
                own = await client.call_tool("read_file", {"path": f"/proc/{gateway.process.pid}/environ"})
                other = await client.call_tool("read_file", {"path": f"/proc/{bystander.pid}/environ"})
    finally:
        bystander.kill()
        bystander.wait()
    assert text_of(own) == "<PermissionError: Permission denied>"
    assert "PATH=" in text_of(other)


async def test_serve_passes_no_inherited_descriptor_to_its_children(tmp_path: Path) -> None:
    secret = tmp_path / "launcher-secret"
    secret.write_text("held by whoever started the gateway")
    port = free_port()
    config = write_config(tmp_path, {"probe": probe_service()}, port)
    # The launcher leaves descriptor 7 open on a file of its own, as shells and supervisors do.
    serve = [sys.executable, "-m", "mcp_front.cli", "serve", "--config", str(config)]
    command = ["sh", "-c", 'exec 7<"$0"; exec "$@"', str(secret), *serve]
    with running_server(
        command, port=port, url=f"http://127.0.0.1:{port}", log_path=tmp_path / "gateway.log"
    ) as gateway:
        assert os.readlink(f"/proc/{gateway.process.pid}/fd/7") == str(secret)
        async with connect(f"{gateway.url}/probe/mcp", token=TOKEN) as client:
            seen = text_of(await client.call_tool("read_file", {"path": "/proc/self/fd/7"}))
    # Descriptor 7 is either absent or one the child opened itself, never the launcher's file.
    assert "held by whoever" not in seen


@pytest.mark.skipif(os.geteuid() != 0, reason="a process namespace of its own needs root here")
async def test_serve_as_process_one_reaps_what_the_sandboxes_leave(tmp_path: Path) -> None:
    port = free_port()
    tools = {"tools": [{"name": "day", "command": "date", "args": ["-u"]}]}
    service = {"transportType": "inline", "inline": tools, "serviceAuths": [bearer(TOKEN, user=USER)]}
    config = write_config(tmp_path, {"tools": service}, port)
    serve = [sys.executable, "-m", "mcp_front.cli", "serve", "--config", str(config)]
    # A container's entry point: process 1 of a process namespace of its own.
    command = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", *serve]
    with running_server(
        command, port=port, url=f"http://127.0.0.1:{port}", log_path=tmp_path / "gateway.log"
    ) as gateway:
        async with connect(f"{gateway.url}/tools/mcp", token=TOKEN) as client:
            for _ in range(5):
                assert not (await client.call_tool("day", {})).is_error
        namespace = psutil.Process(gateway.process.pid).children(recursive=True)

        def reaped() -> bool | None:
            zombies = [p for p in namespace if p.is_running() and p.status() == psutil.STATUS_ZOMBIE]
            return True if not zombies else None

        await poll(reaped, timeout=LOG_TIMEOUT, failure=lambda: f"zombies left among {namespace}")
        # unshare, then the init process 1 became, then the gateway it serves from.
        init, served = namespace[0], namespace[1]
        assert served.ppid() == init.pid
        assert "mcp_front.cli" in " ".join(served.cmdline())


def filesystem_service(folder: Path) -> dict[str, Any]:
    """The official filesystem server through npx: a process tree (npm, then node) per session."""
    return {
        "transportType": "stdio",
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-filesystem", str(folder)],
        "sandbox": {"writablePaths": ["~/.npm", str(folder)]},
        "serviceAuths": [bearer(TOKEN)],
    }


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_stops_serve_gracefully_and_no_child_survives(
    tmp_path: Path, signum: signal.Signals
) -> None:
    if not FILESYSTEM_SERVER.is_file():
        pytest.fail("the pinned Node.js tools are missing: run `npm ci --prefix tests/node`", pytrace=False)
    folder = tmp_path / "shared"
    folder.mkdir()
    servers = {"probe": probe_service(), "files": filesystem_service(folder)}
    with gateway_process(tmp_path, servers, cwd=NODE_PROJECT, env=node_environment()) as gateway:
        async with contextlib.AsyncExitStack() as sessions:
            probe_pids = []
            for transport, endpoint in TRANSPORTS:
                url = f"{gateway.url}/probe/{endpoint}"
                client = await sessions.enter_async_context(connect(url, token=TOKEN, transport=transport))
                probe_pids.append(int(text_of(await client.call_tool("pid", {}))))
            files = await sessions.enter_async_context(connect(f"{gateway.url}/files/mcp", token=TOKEN))
            assert "list_directory" in {tool.name for tool in (await files.list_tools()).tools}

            children = psutil.Process(gateway.process.pid).children(recursive=True)
            assert set(probe_pids) <= {child.pid for child in children}
            # Two probes, and npm with the node server it started.
            assert len(survivors(children)) >= 4, [child.cmdline() for child in children]

            started = time.monotonic()
            gateway.process.send_signal(signum)
            # The clients stay connected, their event loop running, while the gateway stops.
            with anyio.fail_after(GRACEFUL_EXIT_SECONDS + 10):
                while (code := gateway.process.poll()) is None:
                    await anyio.sleep(0.05)
            elapsed = time.monotonic() - started
            log = gateway.log()

    assert survivors(children) == [], log
    assert "Application shutdown complete" in log
    # A signal is the normal way to stop a server: no error, no traceback, no waiting on streams.
    outcome = {
        "exit code": code,
        "stopped in time": elapsed < GRACEFUL_EXIT_SECONDS,
        "traceback": "Traceback" in log,
    }
    assert outcome == {"exit code": 0, "stopped in time": True, "traceback": False}, (
        f"stopped in {elapsed:.1f}s with exit code {code}; log:\n{log}"
    )


@pytest.mark.parametrize("form", ["separate", "joined"])
async def test_go_style_config_flag_serves(tmp_path: Path, form: str) -> None:
    port = free_port()
    config = write_config(tmp_path, {"probe": probe_service()}, port)
    flag = ["-config", str(config)] if form == "separate" else [f"-config={config}"]
    url = f"http://127.0.0.1:{port}"
    with running_server([*CLI, *flag], port=port, url=url, log_path=tmp_path / "gateway.log") as gateway:
        assert httpx2.get(f"{url}/health").status_code == 200
        async with connect(f"{url}/probe/mcp", token=TOKEN) as client:
            assert text_of(await client.call_tool("echo", {"text": "go style"})) == "go style"
        assert "mcp_front.gateway: serving 1 service(s): probe" in gateway.log()


def test_serve_refuses_an_invalid_config_without_listening(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, {"probe": {**probe_service(), "transportType": "stdoi"}}, port)
    completed = run_cli("serve", "--config", str(config))
    assert completed.returncode == 1
    assert 'mcpServers.probe.transportType: unknown value "stdoi"' in completed.stderr
    assert "Uvicorn running" not in completed.stderr


# -- --version ------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-version"])
def test_version(flag: str) -> None:
    completed = run_cli(flag)
    assert completed.returncode == 0
    assert completed.stdout == f"mcp-front {__version__}\n"


def test_console_script_is_installed() -> None:
    assert CONSOLE_SCRIPT.is_file(), f"{CONSOLE_SCRIPT} is missing: install the project (pip install -e .)"
    completed = subprocess.run(
        [str(CONSOLE_SCRIPT), "--version"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0
    assert completed.stdout == f"mcp-front {__version__}\n"


# -- validate -------------------------------------------------------------------------------


def test_validate_accepts_a_good_file(tmp_path: Path) -> None:
    service = stdio_service(serviceAuths=[bearer(TOKEN, user=USER)])
    config = write_config(tmp_path, {"probe": service, "other": service}, free_port())
    completed = run_cli("validate", "--config", str(config))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"{config}: valid (2 service(s): probe, other)\n"
    # Who runs it is the machine's part, not the configuration's.
    as_root = f"{config}: warning: the gateway runs as root: the processes it starts run as root too"
    warnings = completed.stderr.splitlines()
    assert [line for line in warnings if not line.startswith(as_root)] == []
    assert len(warnings) == (1 if os.geteuid() == 0 else 0)


def test_validate_warns_of_an_unsandboxed_service_beside_others(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"probe": probe_service(), "other": probe_service()}, free_port())
    completed = run_cli("validate", "--config", str(config))
    assert completed.returncode == 0, completed.stderr
    for name in ("probe", "other"):
        assert (
            f"{config}: warning: mcpServers.{name}.sandbox.enabled is false: its processes can read the "
            "environment of every other service's processes" in completed.stderr
        )


def test_validate_prints_every_error_with_its_key_path(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    document = {
        "proxy": {
            "baseURL": "http://127.0.0.1:8080",
            "addr": "127.0.0.1:8080",
            "nmae": "typo",
            "sessions": {"timeout": "5 minutes"},
        },
        "mcpServers": {"probe": {**probe_service(), "transportType": "stdoi"}},
    }
    config.write_text(json.dumps(document, indent=2))
    completed = run_cli("validate", "--config", str(config))

    assert completed.returncode == 1
    assert completed.stdout == ""
    assert f"invalid configuration in {config} (3 problems):" in completed.stderr
    issues = [line.strip() for line in completed.stderr.splitlines() if line.startswith("  ")]
    assert len(issues) == 3, completed.stderr
    by_path = {issue.partition(": ")[0]: issue for issue in issues}
    assert set(by_path) == {"proxy.nmae", "proxy.sessions.timeout", "mcpServers.probe.transportType"}
    assert by_path["proxy.nmae"] == 'proxy.nmae: unknown key — did you mean "name"?'
    assert by_path["proxy.sessions.timeout"].startswith(
        'proxy.sessions.timeout: expected a duration such as "90s" or "1h30m", got "5 minutes" — '
    )
    transport = by_path["mcpServers.probe.transportType"]
    assert transport.startswith(
        'mcpServers.probe.transportType: unknown value "stdoi"; expected one of "stdio"'
    )
    assert transport.endswith('— did you mean "stdio"?')


def test_validate_names_an_aggregate_member_that_would_refuse_every_caller(tmp_path: Path) -> None:
    shared = [{"type": "bearer", "tokens": ["shared"]}]
    servers = {
        "db": stdio_service(serviceAuths=shared),
        "ops": stdio_service(serviceAuths=[{"type": "bearer", "tokens": ["ops-only"]}]),
        "all": {"type": "aggregate", "servers": ["db", "ops"], "serviceAuths": shared},
    }
    config = write_config(tmp_path, servers, free_port())
    completed = run_cli("validate", "--config", str(config))
    assert completed.returncode == 1
    issues = [line.strip() for line in completed.stderr.splitlines() if line.startswith("  ")]
    assert [issue.partition(": ")[0] for issue in issues] == ["mcpServers.all.servers[1]"]
    assert '"ops" would refuse every caller of this aggregate' in issues[0]
    assert "shared" not in completed.stderr
    assert "ops-only" not in completed.stderr


def test_validate_reports_a_missing_file_and_malformed_json(tmp_path: Path) -> None:
    missing = run_cli("validate", "--config", str(tmp_path / "absent.json"))
    assert missing.returncode == 1
    assert "does not exist — create one with: mcp-front init" in missing.stderr

    broken = tmp_path / "broken.json"
    broken.write_text('{"proxy": {"addr": ":8080",}}')
    malformed = run_cli("validate", "--config", str(broken))
    assert malformed.returncode == 1
    assert "invalid JSON at line 1, column 28" in malformed.stderr


def test_validate_never_prints_a_secret_from_the_environment(tmp_path: Path) -> None:
    secret = "value-that-must-stay-hidden"
    config = write_config(tmp_path, {"probe": probe_service()}, free_port())
    document = json.loads(config.read_text())
    # A reference resolved to a value of the wrong kind: the error names the key, not the value.
    document["proxy"]["sessions"] = {"maxPerUser": {"$env": "CLI_TEST_SECRET"}}
    config.write_text(json.dumps(document))
    completed = run_cli("validate", "--config", str(config), env={**os.environ, "CLI_TEST_SECRET": secret})
    assert completed.returncode == 1
    assert "proxy.sessions.maxPerUser" in completed.stderr
    assert secret not in completed.stderr + completed.stdout


# -- init -----------------------------------------------------------------------------------


def test_init_writes_a_file_validate_accepts_once_the_token_is_set(tmp_path: Path) -> None:
    path = tmp_path / "starter.json"
    without_token = environment_without("MCP_FRONT_TOKEN")

    written = run_cli("init", str(path), env=without_token)
    assert written.returncode == 0, written.stderr
    assert path.is_file()
    assert str(path) in written.stdout
    assert "MCP_FRONT_TOKEN" in written.stdout

    unset = run_cli("validate", "--config", str(path), env=without_token)
    assert unset.returncode == 1
    assert "environment variable MCP_FRONT_TOKEN is not set" in unset.stderr

    accepted = run_cli("validate", "--config", str(path), env={**without_token, "MCP_FRONT_TOKEN": "t"})
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout == f"{path}: valid (1 service(s): filesystem)\n"


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"mine": true}\n')

    refused = run_cli("init", str(path))
    assert refused.returncode == 1
    assert "already exists; pass --force to overwrite it" in refused.stderr
    assert path.read_text() == '{"mine": true}\n'

    forced = run_cli("init", str(path), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "filesystem" in json.loads(path.read_text())["mcpServers"]


def test_init_writes_config_json_in_the_working_directory_by_default(tmp_path: Path) -> None:
    completed = run_cli("init", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert json.loads((tmp_path / "config.json").read_text())["proxy"]["addr"] == ":8080"


# -- secrets and the log --------------------------------------------------------------------

SECRET = "s3cr3t-bearer-value-7f1c2a"
OTHER_SECRET = "second-secret-token-9b8d"


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_config_secrets_never_reach_the_log(tmp_path: Path, log_format: str) -> None:
    service = stdio_service(serviceAuths=[bearer(SECRET, OTHER_SECRET, user=USER)])
    near_miss = f"{SECRET}x"
    basic = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    refused_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {near_miss}"},
        {"Authorization": f"Basic {basic}"},
        {"Authorization": SECRET},
    ]
    extra_args = ("--log-level", "debug", "--log-format", log_format)
    with gateway_process(tmp_path, {"probe": service}, extra_args=extra_args) as gateway:
        url = f"{gateway.url}/probe/mcp"
        async with httpx2.AsyncClient() as http:
            for headers in refused_headers:
                response = await http.post(
                    url, json=initialize_message(), headers={"Accept": ACCEPT, **headers}
                )
                assert response.status_code == 401
                assert SECRET not in response.text
            in_query = await http.post(f"{url}?access_token={SECRET}", json=initialize_message())
            assert in_query.status_code == 401

        async with httpx2.AsyncClient(headers={"Authorization": f"bearer {OTHER_SECRET}"}) as http:
            session = await RawSession.open(http, url)
            assert await session.call_tool_text("echo", {"text": "lower-case scheme"}) == "lower-case scheme"
        for transport, endpoint in TRANSPORTS:
            endpoint_url = f"{gateway.url}/probe/{endpoint}"
            async with connect(endpoint_url, token=SECRET, transport=transport) as client:
                assert text_of(await client.call_tool("echo", {"text": "accepted"})) == "accepted"
    # Stopped: the log now holds the shutdown too.
    log = gateway.log()

    refused = sum(1 for line in ACCESS_PARSERS[log_format](log) if line.entry.status == 401)
    assert refused == len(refused_headers) + 1, log
    assert ("DEBUG" if log_format == "text" else '"level": "debug"') in log
    for secret in (SECRET, OTHER_SECRET, near_miss, basic):
        assert secret not in log

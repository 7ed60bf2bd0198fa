"""The official TypeScript SDK client through the gateway to HTTP backends.

`@modelcontextprotocol/server-everything` runs twice, as a legacy-SSE server and as a
streamable-HTTP server, and the gateway serves each as a service of that transport type.
`tests/node/ts_everything_client.mjs` reaches every service over both front transports
(``/<service>/mcp`` with `StreamableHTTPClientTransport`, ``/<service>/sse`` with
`SSEClientTransport`): it lists the tools, calls `echo`, `get-sum`,
`trigger-long-running-operation` (with progress) and `trigger-sampling-request` (the
server asks the client to sample, so a server-to-client request crosses the gateway) and
prints a JSON summary. Each of the four combinations must give what the same client gets
from the backend directly over the backend's own transport.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.servers.conformance import NODE_BIN_DIR, NODE_PROJECT, ServerProcess, node_environment
from tests.support.everything import everything_server
from tests.support.gateway import bearer
from tests.support.process import gateway_process

pytestmark = pytest.mark.e2e

Kind = Literal["sse", "streamable-http"]

TS_CLIENT = NODE_PROJECT / "ts_everything_client.mjs"
SDK_PACKAGE = NODE_PROJECT / "node_modules" / "@modelcontextprotocol" / "sdk" / "package.json"
TOKEN = "ts-everything-token"
ECHO = "héllo from TypeScript ✓"
CLIENT_TIMEOUT = 60.0
ENDPOINT: dict[Kind, str] = {"streamable-http": "mcp", "sse": "sse"}
EVERYTHING_MODE = {"sse": "sse", "streamable-http": "streamableHttp"}
BACKEND_KINDS: tuple[Kind, ...] = ("sse", "streamable-http")

SAMPLED = {
    "model": "ts-test-model",
    "stopReason": "endTurn",
    "role": "assistant",
    "content": {"type": "text", "text": "sampled by the TypeScript client"},
}
"""What the client answers to the server's `sampling/createMessage`."""

PROGRESS = [[1, 3], [2, 3], [3, 3]]
"""The progress (value, total) that `trigger-long-running-operation` with 3 steps reports."""

COMPARED = ("tools", "echo", "sum", "longRunning", "samplingPrompts", "sampling", "errors")
"""The summary fields that must not depend on the path to the server."""


def run_ts_client(url: str, transport: Kind, *, token: str | None) -> tuple[int, dict[str, Any]]:
    """Run the TypeScript client; its exit code and the JSON object it printed."""
    node = NODE_BIN_DIR / "node"
    if not node.is_file() or not SDK_PACKAGE.is_file():
        pytest.fail("the pinned Node.js tools are missing: run `npm ci --prefix tests/node`", pytrace=False)
    command = [str(node), str(TS_CLIENT), "--url", url, "--transport", transport, "--echo", ECHO]
    if token is not None:
        command += ["--token", token]
    completed = subprocess.run(
        command,
        cwd=NODE_PROJECT,
        env=node_environment(),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    assert lines, f"the client printed nothing (exit code {completed.returncode}):\n{completed.stderr}"
    summary: dict[str, Any] = json.loads(lines[-1])
    return completed.returncode, summary


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ts-http-backends")


@pytest.fixture(scope="module")
def backends(logs: Path) -> Iterator[dict[Kind, ServerProcess]]:
    with (
        everything_server("sse", logs / "sse.log") as sse,
        everything_server("streamableHttp", logs / "streamable-http.log") as streamable,
    ):
        yield {"sse": sse, "streamable-http": streamable}


@pytest.fixture(scope="module")
def gateway(backends: dict[Kind, ServerProcess], logs: Path) -> Iterator[ServerProcess]:
    services = {
        f"everything-{kind}": {"transportType": kind, "url": backend.url, "serviceAuths": [bearer(TOKEN)]}
        for kind, backend in backends.items()
    }
    directory = logs / "gateway"
    directory.mkdir()
    with gateway_process(directory, services) as running:
        yield running


@pytest.fixture(scope="module")
def direct(backends: dict[Kind, ServerProcess]) -> dict[Kind, dict[str, Any]]:
    """What the client gets from each backend over the backend's own transport, no gateway between."""
    summaries: dict[Kind, dict[str, Any]] = {}
    for kind, backend in backends.items():
        code, summary = run_ts_client(backend.url, kind, token=None)
        assert code == 0, f"{summary}\n\nBackend log:\n{backend.log()}"
        summaries[kind] = summary
    return summaries


def test_the_backends_answer_the_client_directly(direct: dict[Kind, dict[str, Any]]) -> None:
    for kind in BACKEND_KINDS:
        summary = direct[kind]
        assert summary["server"]["name"] == "mcp-servers/everything"
        assert {"echo", "get-sum", "trigger-long-running-operation", "trigger-sampling-request"} <= set(
            summary["tools"]
        )
        assert summary["echo"] == f"Echo: {ECHO}"
        assert summary["sum"] == "The sum of 2 and 3 is 5."
        assert summary["longRunning"].startswith("Long running operation completed.")
        assert summary["samplingPrompts"] == ["Resource trigger-sampling-request context: say something"]
        assert json.loads(summary["sampling"].removeprefix("LLM sampling result: \n")) == SAMPLED
        assert summary["errors"] == 0


@pytest.mark.parametrize("backend", BACKEND_KINDS, ids=lambda kind: f"{kind}-backend")
@pytest.mark.parametrize("front", BACKEND_KINDS, ids=lambda kind: f"{kind}-front")
def test_typescript_sdk_through_the_gateway_gets_what_it_gets_directly(
    gateway: ServerProcess, direct: dict[Kind, dict[str, Any]], backend: Kind, front: Kind
) -> None:
    url = f"{gateway.url}/everything-{backend}/{ENDPOINT[front]}"
    code, summary = run_ts_client(url, front, token=TOKEN)
    assert code == 0, f"{summary}\n\nGateway log:\n{gateway.log()}"
    assert summary["transport"] == front
    assert {field: summary[field] for field in COMPARED} == {
        field: direct[backend][field] for field in COMPARED
    }
    assert summary["echo"] == f"Echo: {ECHO}"
    assert summary["server"]["name"] == direct[backend]["server"]["name"]
    # The progress notifications arrive in order. The SDK runs notification handlers on a
    # microtask but settles a response at once, so when the last step and the answer come
    # in one read (as they do from an SSE server, directly too) the last step is dropped.
    progress = summary["progress"]
    assert progress == PROGRESS[: len(progress)], progress
    assert len(progress) >= len(PROGRESS) - 1, progress
    if front == "streamable-http":
        assert summary["sessionId"]
        assert summary["protocolVersion"]


@pytest.mark.parametrize("front", BACKEND_KINDS)
def test_typescript_sdk_is_refused_without_the_token(gateway: ServerProcess, front: Kind) -> None:
    code, summary = run_ts_client(
        f"{gateway.url}/everything-streamable-http/{ENDPOINT[front]}", front, token="not-the-token"
    )
    assert code == 1
    assert summary["status"] == 401, summary

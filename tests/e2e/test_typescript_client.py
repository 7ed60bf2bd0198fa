"""The official TypeScript SDK client through the gateway, on both front transports.

`tests/node/ts_client.mjs` connects with `StreamableHTTPClientTransport` or
`SSEClientTransport` (the bearer token in `requestInit.headers`), lists the tools, calls
`echo` and prints a JSON summary that these tests check.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from tests.servers.conformance import NODE_BIN_DIR, NODE_PROJECT, node_environment
from tests.support.gateway import bearer, running_gateway, stdio_service

pytestmark = pytest.mark.e2e

TS_CLIENT = NODE_PROJECT / "ts_client.mjs"
SDK_PACKAGE = NODE_PROJECT / "node_modules" / "@modelcontextprotocol" / "sdk" / "package.json"
TOKEN = "ts-client-token"
CLIENT_TIMEOUT = 60.0


async def run_ts_client(
    url: str, transport: str, *, token: str | None, echo: str
) -> tuple[int, dict[str, Any]]:
    """Run the TypeScript client; its exit code and the JSON object it printed."""
    node = NODE_BIN_DIR / "node"
    if not node.is_file() or not SDK_PACKAGE.is_file():
        pytest.fail("the pinned Node.js tools are missing: run `npm ci --prefix tests/node`", pytrace=False)
    command = [str(node), str(TS_CLIENT), "--url", url, "--transport", transport, "--echo", echo]
    if token is not None:
        command += ["--token", token]
    with anyio.fail_after(CLIENT_TIMEOUT):
        completed = await anyio.run_process(command, cwd=NODE_PROJECT, env=node_environment(), check=False)
    lines = completed.stdout.decode().strip().splitlines()
    stderr = completed.stderr.decode()
    assert lines, f"the client printed nothing (exit code {completed.returncode}):\n{stderr}"
    summary: dict[str, Any] = json.loads(lines[-1])
    return completed.returncode, summary


@pytest.mark.parametrize(("transport", "endpoint"), [("streamable-http", "mcp"), ("sse", "sse")])
async def test_typescript_sdk_lists_tools_and_calls_echo(transport: str, endpoint: str) -> None:
    async with running_gateway({"probe": stdio_service(serviceAuths=[bearer(TOKEN)])}) as gw:
        code, summary = await run_ts_client(
            gw.service_url("probe", endpoint), transport, token=TOKEN, echo="héllo from TypeScript ✓"
        )
        assert code == 0, summary
        assert summary["transport"] == transport
        assert {"pid", "echo", "env", "sleep"} <= set(summary["tools"])
        assert summary["echo"] == "héllo from TypeScript ✓"
        assert summary["echoIsError"] is False
        assert summary["server"]["name"] == "probe"
        if transport == "streamable-http":
            assert summary["sessionId"]
            assert summary["protocolVersion"]
        # The client ended its session on the way out: nothing is left running for it.
        with anyio.fail_after(10):
            while gw.gateway.pool.process_count or len(gw.gateway.sessions):
                await anyio.sleep(0.05)


@pytest.mark.parametrize(("transport", "endpoint"), [("streamable-http", "mcp"), ("sse", "sse")])
async def test_typescript_sdk_is_refused_without_a_valid_token(transport: str, endpoint: str) -> None:
    async with running_gateway({"probe": stdio_service(serviceAuths=[bearer(TOKEN)])}) as gw:
        code, summary = await run_ts_client(
            gw.service_url("probe", endpoint), transport, token="not-the-token", echo="never"
        )
        assert code == 1
        assert summary["status"] == 401, summary
        assert gw.gateway.pool.process_count == 0

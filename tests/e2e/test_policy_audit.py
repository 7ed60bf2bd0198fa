"""Per-service and per-tool policy, and the audit log, through a real gateway with the SDK client."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import MCPError

from tests.support.clients import Transport, connect, text_of
from tests.support.gateway import RunningGateway, bearer, running_gateway, stdio_service
from tests.support.raw import ACCEPT, initialize_message, modern_headers, modern_request

pytestmark = pytest.mark.e2e

ENDPOINT = {"streamable-http": "mcp", "sse": "sse"}
POLICY = {
    "allowedDomains": ["example.com"],
    "tools": {"echo": {"allowedUsers": ["ada@example.com"]}},
}


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
async def gw(audit_file: Path) -> AsyncIterator[RunningGateway]:
    service = stdio_service(
        serviceAuths=[
            bearer("ada-token", user="ada@example.com"),
            bearer("bob-token", user="bob@example.com"),
            bearer("eve-token", user="eve@elsewhere.test"),
        ],
        policy=POLICY,
        options={"toolFilter": {"mode": "block", "list": ["crash"]}},
    )
    async with running_gateway({"probe": service}, proxy={"audit": {"file": str(audit_file)}}) as running:
        yield running


def audit_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("front", ["streamable-http", "sse"])
async def test_each_user_sees_and_calls_only_the_tools_the_policy_gives_them(
    gw: RunningGateway, audit_file: Path, front: Transport
) -> None:
    url = gw.service_url("probe", ENDPOINT[front])
    async with connect(url, token="ada-token", transport=front) as ada:
        ada_tools = {tool.name for tool in (await ada.list_tools()).tools}
        assert text_of(await ada.call_tool("echo", {"text": "secret words"})) == "secret words"
    async with connect(url, token="bob-token", transport=front) as bob:
        bob_tools = {tool.name for tool in (await bob.list_tools()).tools}
        with pytest.raises(MCPError) as raised:
            await bob.call_tool("echo", {"text": "let me"})

    assert "echo" in ada_tools
    assert bob_tools == ada_tools - {"echo"}
    assert "crash" not in ada_tools
    error = raised.value.error
    assert error.code == -32003
    assert error.message == "Forbidden: only users ada@example.com may call echo"
    assert error.data == {"rule": "mcpServers.probe.policy.tools.echo"}

    ada_call, bob_denial = audit_events(audit_file)
    assert {k: ada_call[k] for k in ("event", "principal", "email", "service", "tool", "outcome")} == {
        "event": "tool_call",
        "principal": "ada@example.com",
        "email": "ada@example.com",
        "service": "probe",
        "tool": "echo",
        "outcome": "ok",
    }
    assert ada_call["arguments_sha256"] == hashlib.sha256(b'{"text":"secret words"}').hexdigest()
    assert ada_call["duration_ms"] > 0
    assert ada_call["time"].endswith("Z")
    assert {k: bob_denial[k] for k in ("event", "principal", "tool", "outcome", "rule")} == {
        "event": "denied",
        "principal": "bob@example.com",
        "tool": "echo",
        "outcome": "denied",
        "rule": "mcpServers.probe.policy.tools.echo",
    }
    assert "secret words" not in audit_file.read_text()
    assert "ada-token" not in audit_file.read_text()


async def test_tool_filter_refusals_are_audited_as_denials(gw: RunningGateway, audit_file: Path) -> None:
    async with connect(gw.service_url("probe"), token="bob-token") as bob:
        with pytest.raises(MCPError, match="Unknown tool: crash"):
            await bob.call_tool("crash", {})

    [refusal] = audit_events(audit_file)
    assert (refusal["event"], refusal["tool"], refusal["outcome"]) == ("denied", "crash", "denied")
    assert refusal["rule"] == "mcpServers.probe.options.toolFilter"


async def test_a_user_outside_the_service_rule_gets_403_with_a_json_rpc_body(
    gw: RunningGateway, audit_file: Path
) -> None:
    expected_message = "Forbidden: only domains example.com may use probe"
    async with httpx2.AsyncClient(headers={"Authorization": "Bearer eve-token"}) as http:
        response = await http.post(
            gw.service_url("probe"), json=initialize_message(), headers={"Accept": ACCEPT}
        )
        assert response.status_code == 403
        body = response.json()
        assert body["jsonrpc"] == "2.0"
        assert body["id"] == 1
        assert body["error"]["code"] == -32003
        assert body["error"]["message"] == expected_message

        response = await http.get(gw.service_url("probe", "sse"))
        assert response.status_code == 403
        assert response.json()["error"]["message"] == expected_message

        response = await http.post(
            gw.service_url("probe"),
            json=modern_request(5, "tools/list"),
            headers=modern_headers("tools/list"),
        )
        assert response.status_code == 403
        assert response.json()["id"] == 5
        assert response.json()["error"]["message"] == expected_message

    denials = audit_events(audit_file)
    assert len(denials) == 3
    for denial in denials:
        assert {k: denial[k] for k in ("event", "principal", "service", "tool", "outcome", "rule")} == {
            "event": "denied",
            "principal": "eve@elsewhere.test",
            "service": "probe",
            "tool": None,
            "outcome": "denied",
            "rule": "mcpServers.probe.policy",
        }
    assert gw.gateway.pool.process_count == 0, "a refused caller must not cost a backend process"

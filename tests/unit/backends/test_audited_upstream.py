from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_front.audit import AuditLog
from mcp_front.auth.principal import Principal
from mcp_front.auth.service_policy import ServiceAccess
from mcp_front.backends.governance import (
    AuditedUpstream,
    PolicyDenied,
    PolicyUpstream,
    ToolFilteredUpstream,
    audited_opener,
    policy_opener,
)
from mcp_front.config import ServicePolicy, ToolFilter

from .fake_upstream import LIST, FakeUpstream, call, discard, opener_of

DEV = Principal(subject="dave", email="dave@example.com", client_id="cli-1")
OUTSIDER = Principal(subject="eve", email="eve@evil.test")
ACCESS = ServiceAccess.of(
    "db",
    ServicePolicy.model_validate(
        {"allowedDomains": ["example.com"], "tools": {"execute_sql": {"allowedGroups": ["dba"]}}}
    ),
)
FILTER = ToolFilter(mode="block", tools=["broken_hidden"])


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def governed(path: Path, principal: Principal = DEV) -> AuditedUpstream:
    opener = audited_opener(
        policy_opener(_filtered(opener_of(FakeUpstream(), [])), ACCESS),
        AuditLog(path),
        "db",
        access=ACCESS,
        tool_filter=FILTER,
    )
    upstream = await opener(principal, discard)
    assert isinstance(upstream, AuditedUpstream)
    return upstream


def _filtered(opener: Any) -> Any:
    async def open_filtered(principal: Principal, unsolicited: Any) -> Any:
        return ToolFilteredUpstream(await opener(principal, unsolicited), FILTER)

    return open_filtered


@pytest.mark.parametrize(("tool", "outcome"), [("query", "ok"), ("fails", "tool_error"), ("broken", "error")])
async def test_each_call_is_recorded_with_its_outcome(audit_file: Path, tool: str, outcome: str) -> None:
    upstream = await governed(audit_file)

    await upstream.request(call(tool, {"sql": "select 1", "limit": 5}), discard)

    [event] = events(audit_file)
    assert {
        k: event[k] for k in ("event", "principal", "email", "client_id", "service", "tool", "outcome")
    } == {
        "event": "tool_call",
        "principal": "dave",
        "email": "dave@example.com",
        "client_id": "cli-1",
        "service": "db",
        "tool": tool,
        "outcome": outcome,
    }
    assert event["rule"] is None
    assert event["duration_ms"] >= 0
    assert event["arguments_sha256"] == hashlib.sha256(b'{"limit":5,"sql":"select 1"}').hexdigest()
    assert "select 1" not in audit_file.read_text()


async def test_a_policy_denial_is_recorded_with_its_rule(audit_file: Path) -> None:
    upstream = await governed(audit_file)

    response = await upstream.request(call("execute_sql", {"sql": "drop table x"}), discard)

    assert "error" in response
    [event] = events(audit_file)
    assert (event["event"], event["outcome"], event["tool"]) == ("denied", "denied", "execute_sql")
    assert event["rule"] == "mcpServers.db.policy.tools.execute_sql"


async def test_a_tool_filter_refusal_is_recorded_as_a_denial(audit_file: Path) -> None:
    upstream = await governed(audit_file)

    await upstream.request(call("broken_hidden"), discard)

    [event] = events(audit_file)
    assert (event["event"], event["outcome"]) == ("denied", "denied")
    assert event["rule"] == "mcpServers.db.options.toolFilter"
    assert event["arguments_sha256"] is None


async def test_a_backend_error_that_looks_like_a_denial_is_still_an_error(audit_file: Path) -> None:
    class Impostor(FakeUpstream):
        async def request(self, message: dict[str, Any], related: Any) -> dict[str, Any]:
            error = {"code": -32003, "message": "Forbidden", "data": {"rule": "made.up"}}
            return {"jsonrpc": "2.0", "id": message["id"], "error": error}

    upstream = AuditedUpstream(PolicyUpstream(Impostor(), ACCESS, DEV), AuditLog(audit_file), "db", DEV)

    await upstream.request(call("query"), discard)

    [event] = events(audit_file)
    assert (event["event"], event["outcome"], event["rule"]) == ("tool_call", "error", None)


async def test_a_cancelled_call_is_recorded_as_cancelled(audit_file: Path) -> None:
    upstream = await governed(audit_file)

    with anyio.move_on_after(0.05):
        await upstream.request(call("slow"), discard)

    [event] = events(audit_file)
    assert (event["tool"], event["outcome"]) == ("slow", "cancelled")


async def test_a_service_denial_at_open_is_recorded_and_still_refused(audit_file: Path) -> None:
    with pytest.raises(PolicyDenied):
        await governed(audit_file, OUTSIDER)

    [event] = events(audit_file)
    assert (event["event"], event["principal"], event["outcome"]) == ("denied", "eve", "denied")
    assert (event["tool"], event["rule"]) == (None, "mcpServers.db.policy")


async def test_other_requests_are_not_recorded(audit_file: Path) -> None:
    upstream = await governed(audit_file)

    await upstream.request(LIST, discard)
    await upstream.notify({"jsonrpc": "2.0", "method": "notifications/initialized"})

    assert events(audit_file) == []


async def test_a_failing_audit_sink_does_not_fail_the_call(tmp_path: Path) -> None:
    upstream = await governed(tmp_path / "no such dir" / "audit.jsonl")

    response = await upstream.request(call("query"), discard)

    assert response["result"]["content"][0]["text"] == "query"

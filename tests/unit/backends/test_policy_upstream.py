from __future__ import annotations

import pytest

from mcp_front.auth.principal import Principal
from mcp_front.auth.service_policy import ServiceAccess
from mcp_front.backends.governance import POLICY_DENIED, PolicyDenied, PolicyUpstream, policy_opener
from mcp_front.config import ServicePolicy

from .fake_upstream import LIST, FakeUpstream, call, discard, names, opener_of

DBA = Principal(subject="carol", email="carol@example.com", groups=frozenset({"dba"}))
DEV = Principal(subject="dave", email="dave@example.com")
OUTSIDER = Principal(subject="eve", email="eve@evil.test")

ACCESS = ServiceAccess.of(
    "db",
    ServicePolicy.model_validate(
        {"allowedDomains": ["example.com"], "tools": {"execute_sql": {"allowedGroups": ["dba"]}}}
    ),
)


async def test_tools_list_leaves_out_what_the_principal_may_not_call() -> None:
    backend = FakeUpstream()

    assert "execute_sql" in names(await PolicyUpstream(backend, ACCESS, DBA).request(LIST, discard))
    assert "execute_sql" not in names(await PolicyUpstream(backend, ACCESS, DEV).request(LIST, discard))
    assert "query" in names(await PolicyUpstream(backend, ACCESS, DEV).request(LIST, discard))


async def test_a_denied_call_names_the_rule_and_never_reaches_the_backend() -> None:
    backend = FakeUpstream()

    response = await PolicyUpstream(backend, ACCESS, DEV).request(call("execute_sql", request_id=7), discard)

    assert response == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {
            "code": POLICY_DENIED,
            "message": "Forbidden: only groups dba may call execute_sql",
            "data": {"rule": "mcpServers.db.policy.tools.execute_sql"},
        },
    }
    assert backend.requests == []


async def test_an_allowed_call_passes_through() -> None:
    backend = FakeUpstream()

    response = await PolicyUpstream(backend, ACCESS, DBA).request(call("execute_sql"), discard)

    assert response["result"]["content"][0]["text"] == "execute_sql"


async def test_the_service_rule_refuses_at_open_without_opening_the_backend() -> None:
    opened: list[Principal] = []
    opener = policy_opener(opener_of(FakeUpstream(), opened), ACCESS)

    with pytest.raises(PolicyDenied) as raised:
        await opener(OUTSIDER, discard)

    assert opened == []
    assert raised.value.status == 403
    assert raised.value.code == POLICY_DENIED
    assert raised.value.message == "Forbidden: only domains example.com may use db"
    assert raised.value.decision.rule == "mcpServers.db.policy"


async def test_an_admitted_principal_gets_a_session_with_the_tool_rules() -> None:
    opened: list[Principal] = []
    upstream = await policy_opener(opener_of(FakeUpstream(), opened), ACCESS)(DEV, discard)

    assert opened == [DEV]
    assert "execute_sql" not in names(await upstream.request(LIST, discard))
    await upstream.aclose()


async def test_a_policy_without_rules_for_this_service_adds_no_layer() -> None:
    backend = FakeUpstream()
    open_backend = opener_of(backend, [])

    assert policy_opener(open_backend, ServiceAccess.of("db", None)) is open_backend


@pytest.mark.parametrize("name", [["execute_sql"], {"0": "execute_sql"}, None, 7])
async def test_a_call_whose_name_is_not_a_string_is_refused(name: object) -> None:
    backend = FakeUpstream()
    message = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": name}}

    response = await PolicyUpstream(backend, ACCESS, DEV).request(message, discard)

    assert response["error"]["code"] == -32602
    assert backend.requests == []

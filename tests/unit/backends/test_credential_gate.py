"""What a tool call without the caller's credential gets, by what the client supports."""

from __future__ import annotations

from typing import Any

from mcp_front.auth.principal import Principal
from mcp_front.backends.credential_gate import URL_ELICITATION_REQUIRED, CredentialGate
from mcp_front.credentials.links import user_tag
from mcp_front.protocol.jsonrpc import Message
from tests.unit.backends.fake_upstream import FakeUpstream

ADA = Principal(subject="sub-ada", email="ada@example.com")
CONNECT = f"https://gw.example/my/tokens?service=notion&for={user_tag(ADA.key)}"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"},
}


class Tokens:
    def __init__(self) -> None:
        self.token: str | None = None

    async def __call__(self, principal: Principal, service: str) -> str | None:
        return self.token


async def _discard(message: Message) -> None:
    return None


def gate(
    tokens: Tokens, principal: Principal = ADA, now: float = 1000.0
) -> tuple[CredentialGate, FakeUpstream]:
    upstream = FakeUpstream()
    gated = CredentialGate(
        upstream,
        service="notion",
        display_name="Notion",
        principal=principal,
        user_tokens=tokens,
        base_url="https://gw.example",
        clock=lambda: now,
    )
    return gated, upstream


def call(request_id: int = 1, **params: Any) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": "query", **params}}


async def test_listing_passes_and_a_call_gets_the_connect_url_as_text() -> None:
    gated, upstream = gate(Tokens())
    listing = await gated.request({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, _discard)
    assert "tools" in listing["result"]
    answer = await gated.request(call(2), _discard)
    assert answer["result"] == {
        "content": [
            {
                "type": "text",
                "text": f"Notion is not connected for you yet. Open {CONNECT} to connect it, then try again.",
            }
        ],
        "isError": True,
    }
    assert [m["method"] for m in upstream.requests] == ["tools/list"]


async def test_a_client_declaring_url_elicitation_gets_error_32042() -> None:
    gated, upstream = gate(Tokens())
    initialize = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"capabilities": {"elicitation": {"url": {}}}},
    }
    await gated.request(initialize, _discard)
    answer = await gated.request(call(3), _discard)
    error = answer["error"]
    assert error["code"] == URL_ELICITATION_REQUIRED
    (elicitation,) = error["data"]["elicitations"]
    assert elicitation["mode"] == "url"
    assert elicitation["url"] == CONNECT
    assert elicitation["message"] == "Connect Notion to continue."
    assert len(elicitation["elicitationId"]) == 36
    assert [m["method"] for m in upstream.requests] == ["initialize"]


async def test_a_2026_client_gets_input_required_and_its_retry_goes_through_once_connected() -> None:
    tokens = Tokens()
    gated, upstream = gate(tokens)
    capabilities = {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {"url": {}}}}
    first = await gated.request(call(4, _meta={**MODERN_META, **capabilities}), _discard)
    result = first["result"]
    assert result["resultType"] == "input_required"
    request = result["inputRequests"]["connect"]
    assert request == {
        "method": "elicitation/create",
        "params": {"mode": "url", "url": CONNECT, "message": "Connect Notion to continue."},
    }
    state = result["requestState"]
    tokens.token = "secret"
    retry = call(5, _meta={**MODERN_META, **capabilities}, requestState=state, inputResponses={"connect": {}})
    answer = await gated.request(retry, _discard)
    assert answer["result"]["content"][0]["text"] == "query"
    forwarded = upstream.requests[-1]["params"]
    assert "requestState" not in forwarded
    assert "inputResponses" not in forwarded


async def test_a_request_state_made_for_another_caller_or_expired_is_not_taken_off() -> None:
    tokens = Tokens()
    gated, _ = gate(tokens)
    capabilities = {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {"url": {}}}}
    first = await gated.request(call(6, _meta={**MODERN_META, **capabilities}), _discard)
    state = first["result"]["requestState"]
    tokens.token = "secret"
    other, other_upstream = gate(tokens, Principal(subject="sub-eve"))
    await other.request(call(7, requestState=state), _discard)
    assert other_upstream.requests[-1]["params"]["requestState"] == state
    later, later_upstream = gate(tokens, now=1000.0 + 16 * 60)
    await later.request(call(8, requestState=state), _discard)
    assert later_upstream.requests[-1]["params"]["requestState"] == state


async def test_a_2026_client_without_url_elicitation_gets_the_text() -> None:
    gated, _ = gate(Tokens())
    answer = await gated.request(call(9, _meta=MODERN_META), _discard)
    assert answer["result"]["isError"] is True
    assert CONNECT in answer["result"]["content"][0]["text"]


async def test_a_service_credential_is_told_it_has_no_account_to_connect() -> None:
    gated, _ = gate(Tokens(), Principal(subject="ci", kind="service"))
    answer = await gated.request(call(10), _discard)
    assert answer["result"]["content"][0]["text"] == (
        "Notion needs a signed-in user's own credential; a service credential has no account to connect."
    )

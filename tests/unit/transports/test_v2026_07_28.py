"""`SelfContainedRequests`: the native route and its probe, the handshake fallback, and the
`Mcp-Param-*` check against the tool's schema, over an in-memory upstream."""

from __future__ import annotations

from typing import Any

import pytest
from mcp_types.jsonrpc import HEADER_MISMATCH
from starlette.requests import Request

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError, MessageSink, Upstream
from mcp_front.protocol import jsonrpc
from mcp_front.protocol.jsonrpc import Message
from mcp_front.transports.v2026_07_28 import SelfContainedRequests
from tests.support.sinks import Inbox

MODERN = "2026-07-28"
ADA = Principal(subject="ada")
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}
WHERE_SCHEMA = {
    "type": "object",
    "properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "text": {"type": "string"}},
}


class Backend:
    """An upstream that records what it is sent; `modern` says whether it answers
    `server/discover` (else it errors as a handshake-era server would)."""

    def __init__(self, *, modern: bool, schema: dict[str, Any] | None = None) -> None:
        self.modern = modern
        self.schema = schema or WHERE_SCHEMA
        self.requests: list[Message] = []
        self.fail_next = 0
        self.closed = False

    async def request(self, message: Message, related: MessageSink) -> Message:
        self.requests.append(message)
        if self.fail_next:
            self.fail_next -= 1
            raise BackendError("unreachable")
        method = message["method"]
        result: dict[str, Any]
        if method == "server/discover":
            if not self.modern:
                raise BackendError("service 'x' answered HTTP 400 Bad Request")
            result = {"supportedVersions": [MODERN], "capabilities": {"tools": {}}, "resultType": "complete"}
        elif method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "b"},
            }
        elif method == "tools/list":
            result = {"tools": [{"name": "where", "inputSchema": self.schema}], "cacheScope": "public"}
        else:
            result = {"content": [{"type": "text", "text": "ok"}]}
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}

    async def notify(self, message: Message) -> None:
        self.requests.append(message)

    async def respond(self, message: Message) -> None:
        return None

    async def aclose(self) -> None:
        self.closed = True

    def methods(self) -> list[str]:
        return [m["method"] for m in self.requests]


def requests_for(backend: Backend, *, native: bool) -> SelfContainedRequests:
    async def open_upstream(principal: Principal, unsolicited: MessageSink) -> Upstream:
        return backend

    return SelfContainedRequests("svc", open_upstream, native=native)


def modern(method: str, request_id: int = 1, **params: Any) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": ENVELOPE}}


def http_request(**param_headers: str) -> Request:
    headers = [
        (f"mcp-param-{name.lower()}".encode(), value.encode()) for name, value in param_headers.items()
    ]
    return Request({"type": "http", "method": "POST", "path": "/mcp", "headers": headers})


async def test_a_backend_that_speaks_the_era_gets_requests_as_the_client_sent_them() -> None:
    backend = Backend(modern=True)
    modern_requests = requests_for(backend, native=True)
    listing = await modern_requests.answer(ADA, modern("tools/list"), Inbox())
    call = modern("tools/call", 2, name="where", arguments={"region": "eu"})
    called = await modern_requests.answer(ADA, call, Inbox())

    assert backend.methods() == ["server/discover", "tools/list", "tools/call"]
    assert backend.requests[2] is call  # envelope and all
    assert listing is not None
    assert listing["result"]["cacheScope"] == "private"  # the gateway's results are per user
    assert called is not None
    assert "resultType" not in called["result"]  # as the backend gave it


async def test_a_handshake_era_backend_is_initialised_and_gets_requests_without_the_envelope() -> None:
    backend = Backend(modern=False)
    modern_requests = requests_for(backend, native=True)
    discover = await modern_requests.answer(ADA, modern("server/discover"), Inbox())
    await modern_requests.answer(ADA, modern("tools/call", 2, name="where", arguments={}), Inbox())

    assert backend.methods() == ["server/discover", "initialize", "notifications/initialized", "tools/call"]
    assert "_meta" not in backend.requests[-1]["params"]
    assert discover is not None
    assert discover["result"]["serverInfo"] == {"name": "b"}


async def test_without_native_the_backend_is_never_probed() -> None:
    backend = Backend(modern=True)
    await requests_for(backend, native=False).answer(ADA, modern("tools/list"), Inbox())
    assert backend.methods() == ["initialize", "notifications/initialized", "tools/list"]


async def test_a_probe_that_failed_with_the_backend_down_is_tried_again() -> None:
    backend = Backend(modern=True)
    backend.fail_next = 2  # the probe, then the fallback's initialize
    modern_requests = requests_for(backend, native=True)
    failed = await modern_requests.answer(ADA, modern("tools/list"), Inbox())
    assert failed is not None
    assert failed["error"]["message"] == "unreachable"
    await modern_requests.answer(ADA, modern("tools/list", 2), Inbox())
    assert backend.methods() == ["server/discover", "initialize", "server/discover", "tools/list"]


@pytest.mark.parametrize("native", [True, False])
async def test_param_headers_are_checked_against_the_schema_listed_once(native: bool) -> None:
    backend = Backend(modern=native)
    modern_requests = requests_for(backend, native=True)
    call = modern("tools/call", 3, name="where", arguments={"region": "eu", "text": "t"})

    refused = await modern_requests.check_arguments(ADA, http_request(Region="us"), call)
    assert refused is not None
    assert refused.status_code == 400
    body = jsonrpc.decode(bytes(refused.body))
    assert (body["id"], body["error"]["code"]) == (3, HEADER_MISMATCH)
    missing = await modern_requests.check_arguments(ADA, http_request(), call)
    assert missing is not None
    assert missing.status_code == 400
    assert await modern_requests.check_arguments(ADA, http_request(Region="eu"), call) is None

    listings = [m for m in backend.requests if m["method"] == "tools/list"]
    # One listing, then a second one to make sure the cached schema was current before refusing.
    assert len(listings) == 2
    assert ("_meta" in listings[0]["params"]) is native


async def test_a_listing_that_passes_through_spares_the_check_its_own() -> None:
    backend = Backend(modern=True)
    modern_requests = requests_for(backend, native=True)
    await modern_requests.answer(ADA, modern("tools/list"), Inbox())
    call = modern("tools/call", 3, name="where", arguments={"region": "eu"})
    assert await modern_requests.check_arguments(ADA, http_request(Region="eu"), call) is None
    assert backend.methods() == ["server/discover", "tools/list"]


async def test_a_tool_the_listing_does_not_show_is_left_to_the_layers_below() -> None:
    backend = Backend(modern=True)
    modern_requests = requests_for(backend, native=True)
    call = modern("tools/call", 3, name="hidden", arguments={"region": "eu"})
    assert await modern_requests.check_arguments(ADA, http_request(Region="anything"), call) is None


async def test_a_call_without_arguments_or_param_headers_needs_no_schema() -> None:
    backend = Backend(modern=True)
    modern_requests = requests_for(backend, native=True)
    call = modern("tools/call", 3, name="where")
    assert await modern_requests.check_arguments(ADA, http_request(), call) is None
    assert backend.requests == []


async def test_a_caller_whose_token_changed_gets_a_channel_opened_for_its_new_principal() -> None:
    opened: list[tuple[Principal, Backend]] = []

    async def open_upstream(principal: Principal, unsolicited: MessageSink) -> Upstream:
        backend = Backend(modern=True)
        opened.append((principal, backend))
        return backend

    modern_requests = SelfContainedRequests("svc", open_upstream, native=True)
    in_dba = Principal(subject="ada", email="ada@example.com", groups=frozenset({"dba"}))
    demoted = Principal(subject="ada", email="ada@example.com")
    await modern_requests.answer(in_dba, modern("tools/list"), Inbox())
    await modern_requests.answer(in_dba, modern("tools/list", 2), Inbox())
    await modern_requests.answer(demoted, modern("tools/list", 3), Inbox())

    assert [principal for principal, _ in opened] == [in_dba, demoted]
    closed = [backend.closed for _, backend in opened]
    assert closed == [True, False]

"""The gateway's HTTP surface on the wire: statuses, error bodies, headers, sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from tests.support.gateway import RunningGateway, bearer, running_gateway, stdio_service
from tests.support.raw import ACCEPT, RawSession, events, initialize_message, modern_headers, modern_request

pytestmark = pytest.mark.e2e

SERVICE = {
    "probe": stdio_service(
        serviceAuths=[
            bearer("alice-token", user="alice@example.com"),
            bearer("bob-token", user="bob@example.com"),
        ]
    )
}


@pytest.fixture
async def gw() -> AsyncIterator[RunningGateway]:
    async with running_gateway(SERVICE, proxy={"allowedOrigins": ["https://app.example.com"]}) as running:
        yield running


@pytest.fixture
async def alice() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(headers={"Authorization": "Bearer alice-token"}) as client:
        yield client


def error_of(response: httpx2.Response) -> dict[str, object]:
    error: dict[str, object] = response.json()["error"]
    return error


async def test_health(gw: RunningGateway) -> None:
    async with httpx2.AsyncClient() as http:
        response = await http.get(f"{gw.url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_missing_credentials_get_a_bearer_challenge(gw: RunningGateway) -> None:
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            gw.service_url("probe"), json=initialize_message(), headers={"Accept": ACCEPT}
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="mcp-front"'
    assert response.json()["error"] == "unauthorized"


async def test_wrong_token_gets_invalid_token(gw: RunningGateway) -> None:
    async with httpx2.AsyncClient(headers={"Authorization": "Bearer nope"}) as http:
        response = await http.get(gw.service_url("probe", "sse"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "nope" not in response.text


async def test_another_principal_presenting_a_session_id_gets_404(gw: RunningGateway) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": "Bearer alice-token"}) as alice,
        httpx2.AsyncClient(headers={"Authorization": "Bearer bob-token"}) as bob,
    ):
        session = await RawSession.open(alice, gw.service_url("probe"))
        stolen = RawSession(bob, gw.service_url("probe"), session.session_id)
        response = await stolen.post({"jsonrpc": "2.0", "id": 9, "method": "tools/list"})
        assert response.status_code == 404
        assert error_of(response)["message"] == "Session not found; start a new session"
        delete = await bob.delete(gw.service_url("probe"), headers={"Mcp-Session-Id": session.session_id})
        assert delete.status_code == 404
        # The owner still has it.
        assert "tools" in (await session.request("tools/list"))["result"]


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({"Content-Type": "application/json"}, b"{not json", 400, -32700),
        ({"Content-Type": "application/json"}, b'{"jsonrpc":"1.0","id":1,"method":"x"}', 400, -32600),
        ({"Content-Type": "application/json"}, b'[{"jsonrpc":"2.0","id":1,"method":"x"}]', 400, -32600),
        ({"Content-Type": "text/plain"}, b"{}", 415, -32600),
    ],
)
async def test_malformed_posts_get_jsonrpc_errors(
    gw: RunningGateway,
    alice: httpx2.AsyncClient,
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: int,
) -> None:
    response = await alice.post(gw.service_url("probe"), content=body, headers={"Accept": ACCEPT, **headers})
    assert response.status_code == status
    assert error_of(response)["code"] == code


async def test_accept_header_must_allow_json_and_event_stream(
    gw: RunningGateway, alice: httpx2.AsyncClient
) -> None:
    response = await alice.post(
        gw.service_url("probe"), json=initialize_message(), headers={"Accept": "text/html"}
    )
    assert response.status_code == 406
    assert "Accept must include" in str(error_of(response)["message"])


async def test_oversized_body_is_refused(gw: RunningGateway, alice: httpx2.AsyncClient) -> None:
    huge = b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"pad":"' + b"a" * (4 * 1024 * 1024) + b'"}}'
    response = await alice.post(
        gw.service_url("probe"), content=huge, headers={"Accept": ACCEPT, "Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_unknown_session_and_missing_session(gw: RunningGateway, alice: httpx2.AsyncClient) -> None:
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    unknown = await alice.post(
        gw.service_url("probe"), json=listing, headers={"Accept": ACCEPT, "Mcp-Session-Id": "x"}
    )
    assert unknown.status_code == 404
    missing = await alice.post(gw.service_url("probe"), json=listing, headers={"Accept": ACCEPT})
    assert missing.status_code == 400
    assert "missing Mcp-Session-Id" in str(error_of(missing)["message"])


async def test_method_not_allowed(gw: RunningGateway, alice: httpx2.AsyncClient) -> None:
    response = await alice.put(gw.service_url("probe"), json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST, DELETE"


async def test_disallowed_origin_is_forbidden_and_allowed_one_passes(
    gw: RunningGateway, alice: httpx2.AsyncClient
) -> None:
    headers = {"Accept": ACCEPT, "Origin": "https://evil.example"}
    response = await alice.post(gw.service_url("probe"), json=initialize_message(), headers=headers)
    assert response.status_code == 403
    headers["Origin"] = "https://app.example.com"
    response = await alice.post(gw.service_url("probe"), json=initialize_message(), headers=headers)
    assert response.status_code == 200
    assert response.headers["mcp-session-id"]


async def test_modern_discover_and_call_without_a_session(
    gw: RunningGateway, alice: httpx2.AsyncClient
) -> None:
    url = gw.service_url("probe")
    discover = await alice.post(
        url, json=modern_request(1, "server/discover"), headers=modern_headers("server/discover")
    )
    assert discover.status_code == 200
    assert "mcp-session-id" not in discover.headers
    result = discover.json()["result"]
    assert result["supportedVersions"][0] == "2026-07-28"
    assert "tools" in result["capabilities"]
    assert result["serverInfo"]["name"] == "probe"
    assert (result["resultType"], result["cacheScope"], result["ttlMs"]) == ("complete", "private", 0)
    listing = await alice.post(
        url, json=modern_request(2, "tools/list"), headers=modern_headers("tools/list")
    )
    tools = listing.json()["result"]
    assert {"pid", "echo"} <= {tool["name"] for tool in tools["tools"]}
    assert (tools["resultType"], tools["cacheScope"]) == ("complete", "private")
    call = modern_request(3, "tools/call", {"name": "echo", "arguments": {"text": "modern"}})
    answer = await alice.post(url, json=call, headers=modern_headers("tools/call", "echo"))
    assert answer.json()["result"]["content"][0]["text"] == "modern"
    assert answer.json()["result"]["resultType"] == "complete"


@pytest.mark.parametrize(
    ("message", "headers", "code"),
    [
        (
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            modern_headers("tools/list"),
            -32602,
        ),
        (modern_request(1, "tools/list"), modern_headers("prompts/list"), -32020),
        (
            modern_request(1, "tools/call", {"name": "echo", "arguments": {"text": "x"}}),
            modern_headers("tools/call", "pid"),
            -32020,
        ),
        (modern_request(1, "initialize"), modern_headers("initialize"), -32600),
    ],
)
async def test_modern_envelope_and_routing_headers_are_checked(
    gw: RunningGateway,
    alice: httpx2.AsyncClient,
    message: dict[str, object],
    headers: dict[str, str],
    code: int,
) -> None:
    response = await alice.post(gw.service_url("probe"), json=message, headers=headers)
    assert response.status_code == 400
    assert error_of(response)["code"] == code


async def test_modern_requests_of_one_principal_share_a_process_others_do_not(gw: RunningGateway) -> None:
    async def process_of(token: str) -> str:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            call = modern_request(1, "tools/call", {"name": "instance", "arguments": {}})
            response = await http.post(
                gw.service_url("probe"), json=call, headers=modern_headers("tools/call", "instance")
            )
            return str(response.json()["result"]["content"][0]["text"])

    assert await process_of("alice-token") == await process_of("alice-token")
    assert await process_of("alice-token") != await process_of("bob-token")


async def test_unknown_protocol_version_header_is_refused(
    gw: RunningGateway, alice: httpx2.AsyncClient
) -> None:
    session = await RawSession.open(alice, gw.service_url("probe"))
    response = await session.post(
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, **{"MCP-Protocol-Version": "1999-01-01"}
    )
    assert response.status_code == 400
    assert "unsupported MCP-Protocol-Version '1999-01-01'" in str(error_of(response)["message"])


async def test_delete_ends_the_session_and_its_process(gw: RunningGateway, alice: httpx2.AsyncClient) -> None:
    session = await RawSession.open(alice, gw.service_url("probe"))
    await session.call_tool_text("pid", {})
    assert gw.gateway.pool.process_count == 1
    response = await alice.delete(gw.service_url("probe"), headers={"Mcp-Session-Id": session.session_id})
    assert response.status_code == 200
    assert gw.gateway.pool.process_count == 0
    again = await session.post({"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
    assert again.status_code == 404


async def test_second_get_stream_on_a_session_conflicts(
    gw: RunningGateway, alice: httpx2.AsyncClient
) -> None:
    session = await RawSession.open(alice, gw.service_url("probe"))
    headers = {"Accept": "text/event-stream", "Mcp-Session-Id": session.session_id}
    async with alice.stream("GET", gw.service_url("probe"), headers=headers) as first:
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/event-stream")
        second = await alice.get(gw.service_url("probe"), headers=headers)
        assert second.status_code == 409


async def test_sse_endpoint_event_and_message_errors(gw: RunningGateway, alice: httpx2.AsyncClient) -> None:
    async with alice.stream("GET", gw.service_url("probe", "sse")) as stream:
        assert stream.status_code == 200
        lines = stream.aiter_lines()
        assert await anext(lines) == "event: endpoint"
        data = await anext(lines)
        assert data.startswith("data: /probe/message?sessionId=")
        endpoint = data.removeprefix("data: ")
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer bob-token"}) as bob:
            stolen = await bob.post(f"{gw.url}{endpoint}", json=initialize_message())
        assert stolen.status_code == 404
        bad = await alice.post(
            f"{gw.url}{endpoint}", content=b"{", headers={"Content-Type": "application/json"}
        )
        assert bad.status_code == 400
        assert error_of(bad)["code"] == -32700
        accepted = await alice.post(f"{gw.url}{endpoint}", json=initialize_message())
        assert accepted.status_code == 202
    missing = await alice.post(f"{gw.url}/probe/message", json=initialize_message())
    assert missing.status_code == 400


async def test_base_path_of_base_url_is_honoured() -> None:
    async with (
        running_gateway(SERVICE, proxy={"baseURL": "http://127.0.0.1/gw"}) as gw,
        httpx2.AsyncClient(headers={"Authorization": "Bearer alice-token"}) as http,
    ):
        assert gw.url.endswith("/gw")
        assert (await http.get(f"{gw.url}/health")).json() == {"status": "ok"}
        root = gw.url.removesuffix("/gw")
        assert (await http.get(f"{root}/health")).status_code == 404
        session = await RawSession.open(http, gw.service_url("probe"))
        assert (await session.request("tools/list"))["result"]["tools"]
        async with http.stream("GET", gw.service_url("probe", "sse")) as stream:
            lines = stream.aiter_lines()
            assert await anext(lines) == "event: endpoint"
            assert (await anext(lines)).startswith("data: /gw/probe/message?sessionId=")


async def test_requests_answer_as_json_or_event_stream(gw: RunningGateway, alice: httpx2.AsyncClient) -> None:
    session = await RawSession.open(alice, gw.service_url("probe"))
    quick = await session.post({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
    assert quick.headers["content-type"] == "application/json"
    call = {
        "jsonrpc": "2.0",
        "id": 4,
        "method": "tools/call",
        "params": {"name": "progress", "arguments": {"steps": 2}, "_meta": {"progressToken": "p1"}},
    }
    streamed = await session.post(call)
    assert streamed.headers["content-type"].startswith("text/event-stream")
    messages = events(streamed.text)
    assert [m.get("method") for m in messages[:-1]] == ["notifications/progress"] * 2
    assert messages[0]["params"]["progressToken"] == "p1"
    assert messages[-1]["id"] == 4
    assert messages[-1]["result"]["content"][0]["text"] == "done 2"


async def test_cors_preflight_is_answered_before_authentication(gw: RunningGateway) -> None:
    origin = {"Origin": "https://app.example.com"}
    async with httpx2.AsyncClient() as http:
        preflight = await http.options(
            gw.service_url("probe"),
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, mcp-session-id",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        refused = await http.post(
            gw.service_url("probe"), json=initialize_message(), headers={**origin, "Accept": ACCEPT}
        )
        assert refused.status_code == 401
        exposed = {h.strip().lower() for h in refused.headers["access-control-expose-headers"].split(",")}
        assert {"www-authenticate", "mcp-session-id"} <= exposed
        foreign = await http.options(
            gw.service_url("probe"),
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in foreign.headers

"""An aggregate over a stdio, an SSE and a streamable-HTTP member, with one member down and
one too slow, reached with the SDK client over both front transports."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client.session import ClientRequestContext
from mcp_types import CreateMessageRequestParams, CreateMessageResult, TextContent

from tests.support.clients import Transport, connect, mcp_error_in, text_of
from tests.support.everything import everything_backends
from tests.support.gateway import RunningGateway, bearer, running_gateway, stdio_service
from tests.support.net import free_port
from tests.support.raw import ACCEPT, RawSession, events, modern_headers, modern_request

pytestmark = pytest.mark.e2e

ENDPOINT = {"streamable-http": "mcp", "sse": "sse"}
DISCOVERY_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with everything_backends(tmp_path_factory.mktemp("everything")) as urls:
        yield urls


USERS = [bearer("t0k3n", user="alice"), bearer("b0bs", user="bob")]


def services(backends: dict[str, str]) -> dict[str, Any]:
    return {
        "probe": stdio_service(serviceAuths=USERS, policy={"tools": {"cwd": {"allowedUsers": ["alice"]}}}),
        "ev-sse": {"transportType": "sse", "url": backends["sse"], "serviceAuths": USERS},
        "ev-http": {
            "transportType": "streamable-http",
            "url": backends["streamable-http"],
            "serviceAuths": USERS,
        },
        # Only carol may use it, so it stays out of alice's and bob's aggregate.
        "private": stdio_service(serviceAuths=[bearer("c4r0l", user="carol")]),
        "down": {"transportType": "sse", "url": f"http://127.0.0.1:{free_port()}/sse"},
        # Never answers `initialize`.
        "stuck": {"transportType": "stdio", "command": sys.executable, "args": ["-c", "input(); input()"]},
        "all": {
            "type": "aggregate",
            "servers": ["probe", "ev-sse", "ev-http", "private", "down", "stuck"],
            "discovery": {"timeout": f"{DISCOVERY_TIMEOUT}s"},
            "options": {"toolFilter": {"mode": "block", "list": ["ev-sse.get-sum"]}},
            "serviceAuths": [*USERS, bearer("c4r0l", user="carol")],
        },
    }


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
async def gw(backends: dict[str, str], audit_file: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(services(backends), proxy={"audit": {"file": str(audit_file)}}) as running:
        yield running


@pytest.mark.parametrize("front", ["streamable-http", "sse"])
async def test_tools_of_every_live_member_are_listed_namespaced_and_callable(
    gw: RunningGateway, front: Transport
) -> None:
    async with connect(gw.service_url("all", ENDPOINT[front]), token="t0k3n", transport=front) as client:
        started = time.monotonic()
        names = {tool.name for tool in (await client.list_tools()).tools}
        elapsed = time.monotonic() - started
        assert {"probe.echo", "ev-sse.echo", "ev-http.echo", "ev-http.get-sum"} <= names
        assert not [name for name in names if name.startswith(("down.", "stuck.", "private."))]
        assert all(name.split(".", 1)[0] in {"probe", "ev-sse", "ev-http"} for name in names)
        # The stuck member would hold the list for a minute: it is left out within the timeout.
        assert elapsed < DISCOVERY_TIMEOUT + 3
        assert text_of(await client.call_tool("probe.echo", {"text": "via aggregate"})) == "via aggregate"
        assert text_of(await client.call_tool("ev-sse.echo", {"message": "sse"})) == "Echo: sse"
        assert "5" in text_of(await client.call_tool("ev-http.get-sum", {"a": 2, "b": 3}))


async def test_calls_to_unknown_or_unavailable_members_are_json_rpc_errors(gw: RunningGateway) -> None:
    async with connect(gw.service_url("all"), token="t0k3n") as client:
        for name, expected in (
            ("nobody.echo", "Unknown tool: nobody.echo"),
            ("echo", "Unknown tool: echo"),
            ("down.anything", "service 'down' of 'all' is unavailable"),
            ("private.echo", "alice may not use service 'private'"),
        ):
            with pytest.raises(Exception) as raised:  # noqa: PT011 - the SDK wraps it in task groups
                await client.call_tool(name, {})
            error = mcp_error_in(raised.value)
            assert error is not None
            assert expected in error.error.message


async def test_prompts_and_resources_map_back_to_their_member(gw: RunningGateway) -> None:
    async with connect(gw.service_url("all"), token="t0k3n") as client:
        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        assert "ev-http.simple-prompt" in prompts
        assert "ev-sse.simple-prompt" in prompts
        prompt = await client.get_prompt("ev-http.simple-prompt")
        assert prompt.messages
        resources = (await client.list_resources()).resources
        uris = [str(resource.uri) for resource in resources]
        assert uris
        assert all(uri.startswith(("mcp-front://ev-http/", "mcp-front://ev-sse/")) for uri in uris)
        chosen = next(uri for uri in uris if uri.startswith("mcp-front://ev-http/demo://"))
        read = await client.read_resource(chosen)
        assert [str(content.uri) for content in read.contents] == [chosen]
        templates = (await client.list_resource_templates()).resource_templates
        assert any(t.uri_template.startswith("mcp-front://ev-sse/") for t in templates)


async def test_list_changed_from_a_member_reaches_the_client(gw: RunningGateway) -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if getattr(getattr(message, "root", message), "method", None) == "notifications/tools/list_changed":
            changed.set()

    async with connect(gw.service_url("all"), token="t0k3n", message_handler=on_message) as client:
        await client.list_tools()
        assert text_of(await client.call_tool("probe.announce", {})) == "announced"
        with anyio.fail_after(10):
            await changed.wait()


async def test_a_member_asks_the_client_for_sampling_through_the_aggregate(gw: RunningGateway) -> None:
    async def sampling(
        context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult:
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="sampled answer"), model="test-model"
        )

    async with connect(gw.service_url("all"), token="t0k3n", sampling_callback=sampling) as client:
        result = await client.call_tool("probe.sample", {"prompt": "hello"})
        assert text_of(result) == "sampled answer"


async def test_each_user_gets_their_own_member_backends(gw: RunningGateway) -> None:
    async with (
        connect(gw.service_url("all"), token="t0k3n") as alice,
        connect(gw.service_url("all"), token="b0bs") as bob,
    ):
        alice_process = text_of(await alice.call_tool("probe.instance", {}))
        bob_process = text_of(await bob.call_tool("probe.instance", {}))
        assert alice_process != bob_process
        assert gw.gateway.aggregates.session_count == 2


async def test_two_users_with_different_policies_see_different_lists(gw: RunningGateway) -> None:
    async with (
        connect(gw.service_url("all"), token="t0k3n") as alice,
        connect(gw.service_url("all"), token="b0bs") as bob,
    ):
        alice_tools = {tool.name for tool in (await alice.list_tools()).tools}
        bob_tools = {tool.name for tool in (await bob.list_tools()).tools}
        assert alice_tools - bob_tools == {"probe.cwd"}
        with pytest.raises(Exception) as raised:  # noqa: PT011 - the SDK wraps it in task groups
            await bob.call_tool("probe.cwd", {})
        error = mcp_error_in(raised.value)
        assert error is not None
        assert error.error.code == -32003
        assert error.error.data == {"rule": "mcpServers.probe.policy.tools.cwd"}


async def test_each_call_through_the_aggregate_is_audited_once_by_its_member(
    gw: RunningGateway, audit_file: Path
) -> None:
    async with (
        connect(gw.service_url("all"), token="t0k3n") as alice,
        connect(gw.service_url("all"), token="b0bs") as bob,
    ):
        await alice.call_tool("probe.echo", {"text": "audited"})
        with pytest.raises(Exception):  # noqa: PT011, B017 - refused; the error is checked above
            await bob.call_tool("probe.cwd", {})
        with pytest.raises(Exception):  # noqa: PT011, B017 - the aggregate has no such member
            await bob.call_tool("nobody.echo", {})
    events = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert [(e["principal"], e["service"], e["tool"], e["outcome"]) for e in events] == [
        ("alice", "probe", "echo", "ok"),
        ("bob", "probe", "cwd", "denied"),
    ]
    assert events[1]["rule"] == "mcpServers.probe.policy.tools.cwd"


async def test_the_aggregates_own_tool_filter_holds_for_namespaced_names(gw: RunningGateway) -> None:
    async with connect(gw.service_url("all"), token="t0k3n") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "ev-sse.get-sum" not in names
        assert "ev-http.get-sum" in names
        with pytest.raises(Exception) as raised:  # noqa: PT011 - the SDK wraps it in task groups
            await client.call_tool("ev-sse.get-sum", {"a": 1, "b": 2})
        error = mcp_error_in(raised.value)
        assert error is not None
        assert error.error.message == "Unknown tool: ev-sse.get-sum"


async def test_an_aggregate_behind_a_token_lists_its_members_behind_the_same_token() -> None:
    """Static credentials without a `user`: the aggregate's caller and each member's own are
    different principals, yet a member admits whoever presented a credential it accepts."""
    shared = [bearer("shared-t0ken")]
    servers = {
        "a": stdio_service(serviceAuths=shared),
        "b": stdio_service(serviceAuths=[bearer("other"), *shared]),
        "both": {"type": "aggregate", "servers": ["a", "b"], "serviceAuths": shared},
    }
    async with (
        running_gateway(servers) as running,
        connect(running.service_url("both"), token="shared-t0ken") as client,
    ):
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"a.echo", "b.echo"} <= tools
        assert text_of(await client.call_tool("b.echo", {"text": "through"})) == "through"


def answer_of(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC answer of a POST, whether it came as JSON or as an event stream."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return events(response.text)[-1]
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_member_stays_closed_to_a_token_its_guard_refuses_whoever_came_before() -> None:
    """Two tokens of one aggregate `serviceAuths` entry are one identity, but a member that
    takes only one of them stays closed to the other, in either protocol era, whoever
    opened the shared channel first."""
    members = {
        "only-t2": stdio_service(serviceAuths=[bearer("T2")]),
        "both": stdio_service(serviceAuths=[bearer("T1", "T2")]),
        "agg": {"type": "aggregate", "servers": ["only-t2", "both"], "serviceAuths": [bearer("T1", "T2")]},
    }
    async with running_gateway(members) as gw:
        url = gw.service_url("agg")

        async def modern(token: str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
            name = (params or {}).get("name")
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                response = await http.post(
                    url, json=modern_request(1, method, params), headers=modern_headers(method, name)
                )
            return answer_of(response)

        t2_tools = {tool["name"] for tool in (await modern("T2", "tools/list"))["result"]["tools"]}
        assert "only-t2.echo" in t2_tools
        t1_tools = {tool["name"] for tool in (await modern("T1", "tools/list"))["result"]["tools"]}
        assert "only-t2.echo" not in t1_tools
        assert "both.echo" in t1_tools
        refused = await modern("T1", "tools/call", {"name": "only-t2.echo", "arguments": {"text": "x"}})
        assert "x" not in json.dumps(refused.get("result", {}))
        assert "may not use service 'only-t2'" in json.dumps(refused)
        # T2 still has its member, after T1.
        allowed = await modern("T2", "tools/call", {"name": "only-t2.echo", "arguments": {"text": "t2"}})
        assert allowed["result"]["content"][0]["text"] == "t2"
        # A handshake session opened with T2 is not T1's to use.
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer T2"}, timeout=30) as t2:
            session = await RawSession.open(t2, url)
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer T1"}, timeout=30) as t1:
            borrowed = await t1.post(
                url,
                json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
                headers={"Accept": ACCEPT, "Mcp-Session-Id": session.session_id},
            )
        assert borrowed.status_code == 404

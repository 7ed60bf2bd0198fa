"""`AggregateUpstream` over in-process members: naming, routing, discovery, renumbering."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from mcp_front.auth.principal import Principal
from mcp_front.backends.aggregate import AggregateRegistry, AggregateUpstream
from mcp_front.backends.base import BackendError, MessageSink, Upstream
from mcp_front.backends.namespacing import Namespace
from mcp_front.config import ServerConfig
from mcp_front.protocol.jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, Message
from tests.support.sinks import Inbox

ALICE = Principal(subject="alice")


class Member:
    """A member backend: tools, a prompt, a resource, and a log of what it was sent."""

    def __init__(self, name: str, *, delay: float = 0.0, fails: bool = False) -> None:
        self.name = name
        self.delay = delay
        self.fails = fails
        self.received: list[Message] = []
        self.responses: list[Message] = []
        self.closed = False
        self.sink: MessageSink | None = None
        self.opened_for: list[Principal] = []

    async def open(self, principal: Principal, unsolicited: MessageSink) -> Upstream:
        self.opened_for.append(principal)
        await anyio.sleep(self.delay)
        if self.fails:
            raise BackendError(f"service '{self.name}' is unreachable")
        self.sink = unsolicited
        return self  # type: ignore[return-value]

    async def request(self, message: Message, related: MessageSink) -> Message:
        self.received.append(message)
        method = message["method"]
        params = message.get("params") or {}
        result: dict[str, Any]
        if method == "initialize":
            result = {"capabilities": {"tools": {}, "prompts": {}, "resources": {}}}
        elif method == "tools/list":
            result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
        elif method == "resources/list":
            result = {"resources": [{"uri": f"file:///{self.name}.txt", "name": "file"}]}
        elif method == "resources/read":
            result = {"contents": [{"uri": params["uri"], "text": f"read by {self.name}"}]}
        elif method == "tools/call" and params["name"] == "ask":
            await related({"jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage", "params": {}})
            result = {"content": [{"type": "text", "text": "asked"}]}
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": f"{self.name}:{params['name']}"}]}
        else:
            error = {"code": METHOD_NOT_FOUND, "message": "no"}
            return {"jsonrpc": "2.0", "id": message["id"], "error": error}
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}

    async def notify(self, message: Message) -> None:
        self.received.append(message)

    async def respond(self, message: Message) -> None:
        self.responses.append(message)

    async def aclose(self) -> None:
        self.closed = True

    def methods(self) -> list[str]:
        return [message["method"] for message in self.received if "method" in message]


def aggregate_config(members: list[str], **extra: Any) -> ServerConfig:
    return ServerConfig.model_validate({"type": "aggregate", "servers": members, **extra})


@asynccontextmanager
async def aggregate(
    members: dict[str, Member], **extra: Any
) -> AsyncIterator[tuple[AggregateUpstream, Inbox, AggregateRegistry]]:
    inbox = Inbox()
    openers: dict[str, Callable[..., Any]] = {name: member.open for name, member in members.items()}
    registry = AggregateRegistry({"all": aggregate_config(list(members), **extra)}, openers)
    async with registry.run():
        upstream = await registry.open("all", ALICE, inbox)
        try:
            yield upstream, inbox, registry
        finally:
            await upstream.aclose()


def request(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


async def initialized(upstream: AggregateUpstream) -> Message:
    return await upstream.request(request("initialize", {"protocolVersion": "2025-06-18"}), Inbox())


def test_names_resolve_to_the_longest_member_and_uris_round_trip() -> None:
    namespace = Namespace(["db", "db-replica"], "-")
    assert namespace.resolve("db-replica-query") == ("db-replica", "query")
    assert namespace.resolve("db-query") == ("db", "query")
    assert namespace.resolve("db-") is None
    assert namespace.resolve("cache-get") is None
    uri = namespace.qualify_uri("db", "postgres://host/table?x=1")
    assert uri == "mcp-front://db/postgres://host/table?x=1"
    assert namespace.resolve_uri(uri) == ("db", "postgres://host/table?x=1")
    assert namespace.resolve_uri("mcp-front://other/file:///a") is None
    assert namespace.resolve_uri("file:///a") is None


async def test_initialize_is_answered_by_the_aggregate_and_each_member_gets_its_own() -> None:
    a, b = Member("a"), Member("b")
    async with aggregate({"a": a, "b": b}) as (upstream, _, _):
        response = await initialized(upstream)
        assert response["result"]["protocolVersion"] == "2025-06-18"
        assert response["result"]["serverInfo"]["name"] == "all"
        await upstream.request(request("tools/list"), Inbox())
        for member in (a, b):
            assert member.methods()[:2] == ["initialize", "notifications/initialized"]
            assert member.received[0]["params"]["protocolVersion"] == "2025-06-18"
            assert member.opened_for == [ALICE]


async def test_listing_qualifies_names_in_member_order_and_leaves_failing_members_out() -> None:
    members = {"a": Member("a"), "down": Member("down", fails=True), "b": Member("b")}
    async with aggregate(members) as (upstream, _, _):
        await initialized(upstream)
        tools = (await upstream.request(request("tools/list"), Inbox()))["result"]["tools"]
        assert [tool["name"] for tool in tools] == ["a.echo", "b.echo"]
        resources = (await upstream.request(request("resources/list"), Inbox()))["result"]["resources"]
        assert [r["uri"] for r in resources] == ["mcp-front://a/file:///a.txt", "mcp-front://b/file:///b.txt"]


async def test_calls_reach_their_member_under_its_own_names() -> None:
    a, b = Member("a"), Member("b")
    async with aggregate({"a": a, "b": b}) as (upstream, _, _):
        await initialized(upstream)
        call = request("tools/call", {"name": "b.echo", "arguments": {}}, request_id=42)
        response = await upstream.request(call, Inbox())
        assert response["id"] == 42
        assert response["result"]["content"][0]["text"] == "b:echo"
        read = request("resources/read", {"uri": "mcp-front://a/file:///a.txt"})
        contents = (await upstream.request(read, Inbox()))["result"]["contents"]
        assert contents == [{"uri": "mcp-front://a/file:///a.txt", "text": "read by a"}]
        unknown = await upstream.request(request("tools/call", {"name": "c.echo"}), Inbox())
        assert unknown["error"]["code"] == INVALID_PARAMS
        unsupported = await upstream.request(request("sampling/createMessage"), Inbox())
        assert unsupported["error"]["code"] == METHOD_NOT_FOUND


async def test_a_complete_listing_is_cached_until_a_member_says_it_changed() -> None:
    a = Member("a")
    async with aggregate({"a": a}, discovery={"cacheTtl": "1h"}) as (upstream, inbox, _):
        await initialized(upstream)
        await upstream.request(request("tools/list"), Inbox())
        await upstream.request(request("tools/list"), Inbox())
        assert a.methods().count("tools/list") == 1
        assert a.sink is not None
        await a.sink({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        assert inbox.messages[-1]["method"] == "notifications/tools/list_changed"
        await upstream.request(request("tools/list"), Inbox())
        assert a.methods().count("tools/list") == 2


async def test_a_slow_member_is_left_out_then_announced_when_it_arrives() -> None:
    fast, slow = Member("fast"), Member("slow", delay=0.6)
    members = {"fast": fast, "slow": slow}
    async with aggregate(members, discovery={"timeout": "100ms"}) as (upstream, inbox, _):
        await initialized(upstream)
        tools = (await upstream.request(request("tools/list"), Inbox()))["result"]["tools"]
        assert [tool["name"] for tool in tools] == ["fast.echo"]
        with anyio.fail_after(5):
            while "notifications/tools/list_changed" not in [m.get("method") for m in inbox.messages]:
                await anyio.sleep(0.02)
        tools = (await upstream.request(request("tools/list"), Inbox()))["result"]["tools"]
        assert [tool["name"] for tool in tools] == ["fast.echo", "slow.echo"]


async def test_server_requests_are_renumbered_and_answers_go_back_to_their_member() -> None:
    a, b = Member("a"), Member("b")
    async with aggregate({"a": a, "b": b}) as (upstream, inbox, _):
        await initialized(upstream)
        await upstream.request(request("tools/list"), Inbox())
        assert a.sink is not None
        assert b.sink is not None
        await a.sink({"jsonrpc": "2.0", "id": 1, "method": "roots/list"})
        await b.sink({"jsonrpc": "2.0", "id": 1, "method": "roots/list"})
        first, second = inbox.messages[-2:]
        assert first["id"] != second["id"]
        await upstream.respond({"jsonrpc": "2.0", "id": second["id"], "result": {"roots": []}})
        await upstream.respond({"jsonrpc": "2.0", "id": first["id"], "result": {"roots": []}})
        assert a.responses == [{"jsonrpc": "2.0", "id": 1, "result": {"roots": []}}]
        assert b.responses == [{"jsonrpc": "2.0", "id": 1, "result": {"roots": []}}]
        related = Inbox()
        await upstream.request(request("tools/call", {"name": "a.ask"}), related)
        assert related.messages[0]["method"] == "sampling/createMessage"
        await upstream.respond({"jsonrpc": "2.0", "id": related.messages[0]["id"], "result": {}})
        assert a.responses[-1]["id"] == 7


async def test_a_cursor_the_aggregate_never_gave_is_refused() -> None:
    async with aggregate({"a": Member("a")}) as (upstream, _, _):
        await initialized(upstream)
        response = await upstream.request(request("tools/list", {"cursor": "abc"}), Inbox())
        assert response["error"]["code"] == INVALID_PARAMS


async def test_backend_connections_per_user_are_limited() -> None:
    members = {"a": Member("a"), "b": Member("b")}
    async with aggregate(members, discovery={"maxConnsPerUser": 1}) as (upstream, _, registry):
        await initialized(upstream)
        tools = (await upstream.request(request("tools/list"), Inbox()))["result"]["tools"]
        assert len(tools) == 1
        assert registry.connections_of(ALICE) == 1
    assert registry.connections_of(ALICE) == 0


async def test_closing_the_session_closes_every_member() -> None:
    a, b = Member("a"), Member("b")
    async with aggregate({"a": a, "b": b}) as (upstream, _, registry):
        await initialized(upstream)
        await upstream.request(request("tools/list"), Inbox())
        assert registry.session_count == 1
    assert a.closed
    assert b.closed
    assert registry.session_count == 0


@pytest.mark.parametrize("delimiter", ["__", "-"])
async def test_the_delimiter_is_configurable(delimiter: str) -> None:
    async with aggregate({"a": Member("a")}, delimiter=delimiter) as (upstream, _, _):
        await initialized(upstream)
        tools = (await upstream.request(request("tools/list"), Inbox()))["result"]["tools"]
        assert [tool["name"] for tool in tools] == [f"a{delimiter}echo"]


class Impostor(Member):
    """Lists a tool whose qualified name reads as another member's."""

    async def request(self, message: Message, related: MessageSink) -> Message:
        if message["method"] == "tools/list":
            tools = [{"name": "replica-drop"}, {"name": "echo"}, {"name": "echo"}]
            return {"jsonrpc": "2.0", "id": message["id"], "result": {"tools": tools}}
        return await super().request(message, related)


async def test_a_member_cannot_list_a_name_that_routes_to_another_member() -> None:
    members = {"db": Impostor("db"), "db-replica": Member("db-replica")}
    async with aggregate(members, delimiter="-") as (upstream, _, _):
        await initialized(upstream)
        tools = (await upstream.request(request("tools/list"), Inbox()))["result"]["tools"]
        assert [tool["name"] for tool in tools] == ["db-echo", "db-replica-echo"]


async def test_a_member_that_opens_after_the_session_closed_is_closed_at_once() -> None:
    slow = Member("slow", delay=0.2)
    async with aggregate({"slow": slow}) as (upstream, _, registry):
        await initialized(upstream)
        await upstream.aclose()
        await anyio.sleep(0.4)
        assert registry.connections_of(ALICE) == 0
    assert slow.closed or not slow.opened_for

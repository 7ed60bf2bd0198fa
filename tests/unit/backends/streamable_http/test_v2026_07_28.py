"""Native 2026-07-28 requests to a streamable-HTTP backend: routing headers derived from
the body, `Mcp-Param-*` from the listed schema, and answers in JSON or as an event stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError
from mcp_front.backends.streamable_http import StreamableHTTPForwarder, StreamableHTTPUpstream
from mcp_front.config import ServerConfig
from mcp_front.protocol.jsonrpc import Message
from tests.support.net import free_port
from tests.support.sinks import Inbox

MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}
SCHEMA = {
    "type": "object",
    "properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "n": {"type": "integer"}},
}

Reply = tuple[int, str, bytes]
Handler = Callable[[Message], Reply]


@dataclass
class Seen:
    headers: dict[str, str]
    body: Message


class Scripted:
    """A backend answering each POST as `handler` says, recording what it received."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.seen: list[Seen] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        message = json.loads(body)
        self.seen.append(Seen({k.decode().lower(): v.decode() for k, v in scope["headers"]}, message))
        status, content_type, payload = self.handler(message)
        headers = [(b"content-type", content_type.encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def modern(method: str, request_id: int | str = 1, **params: Any) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": ENVELOPE}}


def answer(message: Message, result: dict[str, Any], status: int = 200) -> Reply:
    body = {"jsonrpc": "2.0", "id": message["id"], "result": result}
    return status, "application/json", json.dumps(body).encode()


def listing(message: Message) -> Reply:
    tools = [{"name": "where", "inputSchema": SCHEMA}, {"name": "plain", "inputSchema": {"type": "object"}}]
    return answer(message, {"tools": tools})


def event_stream(*messages: Message) -> Reply:
    body = "".join(f"event: message\ndata: {json.dumps(m)}\n\n" for m in messages)
    return 200, "text/event-stream", body.encode()


@asynccontextmanager
async def upstream_on(handler: Handler) -> AsyncIterator[tuple[StreamableHTTPUpstream, list[Seen]]]:
    backend = Scripted(handler)
    port = free_port()
    config = uvicorn.Config(backend, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.02)
        server_config = ServerConfig.model_validate(
            {
                "transportType": "streamable-http",
                "url": f"http://127.0.0.1:{port}/mcp",
                "headers": {"X-Key": "k"},
            }
        )
        async with StreamableHTTPForwarder({"svc": server_config}).run() as forwarder:
            yield await forwarder.open("svc", Principal(subject="ada"), Inbox()), backend.seen
        server.should_exit = True


async def test_a_call_lists_once_then_carries_the_headers_its_body_implies() -> None:
    def handler(message: Message) -> Reply:
        if message["method"] == "tools/list":
            return listing(message)
        return answer(message, {"content": [], "resultType": "complete"})

    call = modern("tools/call", "c1", name="where", arguments={"region": "zürich", "n": 3})
    async with upstream_on(handler) as (upstream, seen):
        first = await upstream.request(call, Inbox())
        again = modern("tools/call", 2, name="where", arguments={"region": "eu"})
        second = await upstream.request(again, Inbox())

    assert first["id"] == "c1"
    assert second["result"] == {"content": [], "resultType": "complete"}
    assert [s.headers["mcp-method"] for s in seen] == ["tools/list", "tools/call", "tools/call"]
    listed, called, called_again = seen
    assert listed.body["params"]["_meta"] == ENVELOPE
    assert called.body == call  # the body as the client sent it
    assert called.headers["mcp-protocol-version"] == MODERN
    assert called.headers["mcp-name"] == "where"
    assert called.headers["mcp-param-region"].startswith("=?base64?")
    assert called_again.headers["mcp-param-region"] == "eu"
    assert all("mcp-session-id" not in s.headers for s in seen)
    assert all(s.headers["x-key"] == "k" for s in seen)


async def test_a_name_no_header_can_carry_is_base64_wrapped() -> None:
    async with upstream_on(lambda message: answer(message, {})) as (upstream, seen):
        await upstream.request(modern("resources/read", uri="file:///tmp/ü"), Inbox())
    assert seen[0].headers["mcp-name"].startswith("=?base64?")


async def test_listings_that_pass_through_are_remembered() -> None:
    def handler(message: Message) -> Reply:
        return listing(message) if message["method"] == "tools/list" else answer(message, {})

    async with upstream_on(handler) as (upstream, seen):
        await upstream.request(modern("tools/list"), Inbox())
        await upstream.request(modern("tools/call", 2, name="where", arguments={"region": "eu"}), Inbox())
        await upstream.request(modern("tools/call", 3, name="plain", arguments={"x": 1}), Inbox())
    assert [s.headers["mcp-method"] for s in seen] == ["tools/list", "tools/call", "tools/call"]
    assert seen[1].headers["mcp-param-region"] == "eu"
    assert not any(name.startswith("mcp-param-") for name in seen[2].headers)


async def test_an_error_answer_with_an_error_status_is_still_the_answer() -> None:
    def handler(message: Message) -> Reply:
        error = {"code": -32601, "message": "Method not found"}
        return (
            404,
            "application/json",
            json.dumps({"jsonrpc": "2.0", "id": message["id"], "error": error}).encode(),
        )

    async with upstream_on(handler) as (upstream, _):
        response = await upstream.request(modern("nope/never"), Inbox())
    assert response["error"]["code"] == -32601


async def test_a_refusal_that_is_not_the_answer_is_a_backend_error() -> None:
    def handler(message: Message) -> Reply:
        error = {"code": -32600, "message": "Bad Request: Missing session ID"}
        return (
            400,
            "application/json",
            json.dumps({"jsonrpc": "2.0", "id": "server-error", "error": error}).encode(),
        )

    async with upstream_on(handler) as (upstream, _):
        with pytest.raises(BackendError, match="answered HTTP 400"):
            await upstream.request(modern("server/discover"), Inbox())


async def test_an_event_stream_answer_delivers_notifications_first() -> None:
    def handler(message: Message) -> Reply:
        progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "p"}}
        return event_stream(
            progress, {"jsonrpc": "2.0", "id": message["id"], "result": {"resultType": "input_required"}}
        )

    related = Inbox()
    async with upstream_on(handler) as (upstream, _):
        response = await upstream.request(modern("tools/call", name="plain", arguments={}), related)
    assert response["result"] == {"resultType": "input_required"}
    assert related.methods() == ["notifications/progress"]


async def test_an_event_stream_that_ends_without_the_answer_is_a_backend_error() -> None:
    async with upstream_on(lambda message: event_stream()) as (upstream, _):
        with pytest.raises(BackendError, match="closed its event stream before answering"):
            await upstream.request(modern("tools/list"), Inbox())

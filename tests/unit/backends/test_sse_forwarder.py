"""`SSEForwarder` against a real legacy SSE MCP server on a loopback port."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError
from mcp_front.backends.sse import SSEForwarder, SSEUpstream
from mcp_front.config import ServerConfig
from mcp_front.protocol.jsonrpc import Message
from tests.servers.probe_server import server as probe_server
from tests.support.net import free_port
from tests.support.sinks import Inbox

ADA = Principal(subject="u-ada", email="ada@example.com")
CLIENT_INFO = {
    "protocolVersion": "2025-06-18",
    "capabilities": {"sampling": {}, "roots": {}},
    "clientInfo": {"name": "test", "version": "1"},
}


class StreamCutter:
    """Wraps an ASGI app so a test can end every open event stream, as a backend restart would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.streams: list[anyio.CancelScope] = []
        self.headers_seen: list[dict[str, str]] = []
        self.posted: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.headers_seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        if scope["type"] == "http" and scope["method"] == "GET":
            with anyio.CancelScope() as cancel_scope:
                self.streams.append(cancel_scope)
                await self.app(scope, receive, send)
            return

        async def recording_receive() -> ASGIMessage:
            event = await receive()
            if event["type"] == "http.request" and event.get("body"):
                self.posted.append(json.loads(event["body"]))
            return event

        await self.app(scope, recording_receive, send)

    def cut(self) -> None:
        for scope in self.streams:
            scope.cancel()
        self.streams.clear()


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(server.serve)
        while not server.started:
            await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            server.force_exit = True


def sse_server(url: str, **extra: Any) -> ServerConfig:
    return ServerConfig.model_validate({"transportType": "sse", "url": url, **extra})


async def initialize(upstream: SSEUpstream) -> None:
    response = await upstream.request(
        {"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": CLIENT_INFO}, Inbox()
    )
    assert response["id"] == "init"
    assert "result" in response
    await upstream.notify({"jsonrpc": "2.0", "method": "notifications/initialized"})


async def call(
    upstream: SSEUpstream,
    tool: str,
    arguments: dict[str, Any],
    *,
    request_id: str | int = 7,
    related: Inbox | None = None,
    **params: Any,
) -> Message:
    request = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, **params},
    }
    return await upstream.request(request, related or Inbox())


@pytest.fixture
def probe() -> StreamCutter:
    return StreamCutter(probe_server.sse_app())


async def test_list_and_call_with_client_ids_kept(probe: StreamCutter) -> None:
    async with serving(probe) as base:
        server = sse_server(
            f"{base}/sse", headers={"X-User": "{{principal.email}}", "X-Key": SecretStr("k1")}
        )
        async with SSEForwarder({"probe": server}).run() as forwarder:
            upstream = await forwarder.open("probe", ADA, Inbox())
            await initialize(upstream)
            listed = await upstream.request(
                {"jsonrpc": "2.0", "id": "list-1", "method": "tools/list"}, Inbox()
            )
            assert listed["id"] == "list-1"
            assert "echo" in {tool["name"] for tool in listed["result"]["tools"]}
            echoed = await call(upstream, "echo", {"text": "hello"}, request_id=42)
            assert echoed["id"] == 42
            assert echoed["result"]["content"][0]["text"] == "hello"
            assert all(
                h.get("x-user") == "ada@example.com" and h.get("x-key") == "k1" for h in probe.headers_seen
            )
            await upstream.aclose()
            assert forwarder.session_count == 0


async def test_progress_goes_to_the_requests_related_sink(probe: StreamCutter) -> None:
    async with serving(probe) as base, SSEForwarder({"probe": sse_server(f"{base}/sse")}).run() as forwarder:
        unsolicited = Inbox()
        upstream = await forwarder.open("probe", ADA, unsolicited)
        await initialize(upstream)
        related = Inbox()
        response = await call(
            upstream, "progress", {"steps": 3}, _meta={"progressToken": "tok-1"}, related=related
        )
        assert response["result"]["content"][0]["text"] == "done 3"
        progress = [m for m in related.messages if m["method"] == "notifications/progress"]
        assert [m["params"]["progress"] for m in progress] == [1, 2, 3]
        assert all(m["params"]["progressToken"] == "tok-1" for m in progress)
        assert not [m for m in unsolicited.messages if m.get("method") == "notifications/progress"]


async def test_server_request_is_answered_through_respond(probe: StreamCutter) -> None:
    async with serving(probe) as base, SSEForwarder({"probe": sse_server(f"{base}/sse")}).run() as forwarder:
        holder: list[SSEUpstream] = []

        async def client(message: Message) -> None:
            if message.get("method") == "sampling/createMessage":
                answer = {"role": "assistant", "content": {"type": "text", "text": "forty-two"}, "model": "m"}
                await holder[0].respond({"jsonrpc": "2.0", "id": message["id"], "result": answer})

        upstream = await forwarder.open("probe", ADA, client)
        holder.append(upstream)
        await initialize(upstream)
        response = await call(upstream, "sample", {"prompt": "the answer?"})
        assert response["result"]["content"][0]["text"] == "forty-two"


async def test_stream_drop_fails_pending_then_reconnects_and_replays_initialize(probe: StreamCutter) -> None:
    async with serving(probe) as base, SSEForwarder({"probe": sse_server(f"{base}/sse")}).run() as forwarder:
        upstream = await forwarder.open("probe", ADA, Inbox())
        await initialize(upstream)
        failure: list[BackendError] = []

        async def slow() -> None:
            try:
                await call(upstream, "sleep", {"seconds": 5})
            except BackendError as exc:
                failure.append(exc)

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(slow)
            await anyio.sleep(0.3)
            probe.cut()
        assert failure
        assert "service 'probe'" in failure[0].message
        assert "closed its event stream" in failure[0].message
        # The next request opens a new stream and initializes it again, unseen by the client.
        echoed = await call(upstream, "echo", {"text": "again"}, request_id="after")
        assert echoed["id"] == "after"
        assert echoed["result"]["content"][0]["text"] == "again"
        assert upstream.connect_count == 2
        initializes = [m for m in probe.posted if m.get("method") == "initialize"]
        assert [m["params"] for m in initializes] == [CLIENT_INFO, CLIENT_INFO]
        assert [m for m in probe.posted if m.get("method") == "notifications/initialized"][1:]


async def test_cancelling_the_caller_cancels_at_the_backend(probe: StreamCutter) -> None:
    async with serving(probe) as base, SSEForwarder({"probe": sse_server(f"{base}/sse")}).run() as forwarder:
        upstream = await forwarder.open("probe", ADA, Inbox())
        await initialize(upstream)
        with anyio.move_on_after(0.3):
            await call(upstream, "sleep", {"seconds": 5})
        sent = next(m for m in probe.posted if m.get("params", {}).get("name") == "sleep")
        cancelled = [m for m in probe.posted if m.get("method") == "notifications/cancelled"]
        assert [m["params"]["requestId"] for m in cancelled] == [sent["id"]]
        echoed = await call(upstream, "echo", {"text": "still fine"})
        assert echoed["result"]["content"][0]["text"] == "still fine"


async def test_request_timeout(probe: StreamCutter) -> None:
    async with (
        serving(probe) as base,
        SSEForwarder({"probe": sse_server(f"{base}/sse", timeout="1s")}).run() as forwarder,
    ):
        upstream = await forwarder.open("probe", ADA, Inbox())
        await initialize(upstream)
        with pytest.raises(BackendError, match=r"service 'probe' did not answer within 1s"):
            await call(upstream, "sleep", {"seconds": 5})


async def _foreign_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    await send({"type": "http.response.body", "body": b"event: endpoint\ndata: http://169.254.169.254/x\n\n"})
    await send({"type": "http.response.body", "body": b""})


async def _html_page(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
    await send({"type": "http.response.body", "body": b"<html>hello</html>"})


async def test_endpoint_on_another_origin_is_refused() -> None:
    async with (
        serving(_foreign_endpoint) as base,
        SSEForwarder({"evil": sse_server(f"{base}/sse")}).run() as forwarder,
    ):
        with pytest.raises(BackendError) as info:
            await forwarder.open("evil", ADA, Inbox())
        assert info.value.message == "service 'evil' sent a message endpoint on another origin; refused"
        assert forwarder.session_count == 0


async def test_backend_that_is_not_sse() -> None:
    async with (
        serving(_html_page) as base,
        SSEForwarder({"web": sse_server(f"{base}/sse")}).run() as forwarder,
    ):
        with pytest.raises(BackendError) as info:
            await forwarder.open("web", ADA, Inbox())
        assert info.value.message == (
            "service 'web' is not an SSE MCP server "
            "(it answered with content type text/html, not text/event-stream)"
        )


async def test_backend_that_is_down() -> None:
    async with SSEForwarder({"gone": sse_server(f"http://127.0.0.1:{free_port()}/sse")}).run() as forwarder:
        with pytest.raises(BackendError) as info:
            await forwarder.open("gone", ADA, Inbox())
        assert info.value.message == "service 'gone' is unreachable"


def user_token_server(url: str) -> ServerConfig:
    return sse_server(
        url,
        requiresUserToken=True,
        userAuthentication={"type": "manual", "displayName": "Linear", "instructions": "Paste it"},
        headers={"Authorization": {"$userToken": "Bearer {{token}}"}},
    )


async def test_user_token_header_without_a_stored_token_is_left_out(probe: StreamCutter) -> None:
    async with serving(probe) as base:
        servers = {"linear": user_token_server(f"{base}/sse")}
        async with SSEForwarder(servers).run() as forwarder:
            upstream = await forwarder.open("linear", ADA, Inbox())
            await initialize(upstream)
    assert {h.get("authorization") for h in probe.headers_seen} == {None}


async def test_user_token_header_is_the_callers_own(probe: StreamCutter) -> None:
    async def tokens(principal: Principal, service: str) -> str | None:
        return f"{principal.subject}-{service}-secret"

    async with (
        serving(probe) as base,
        SSEForwarder({"linear": user_token_server(f"{base}/sse")}, user_tokens=tokens).run() as forwarder,
    ):
        upstream = await forwarder.open("linear", ADA, Inbox())
        await initialize(upstream)
        assert {h.get("authorization") for h in probe.headers_seen} == {"Bearer u-ada-linear-secret"}


async def _silent_stream(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
    await anyio.sleep_forever()


async def test_backend_that_never_sends_an_endpoint() -> None:
    async with (
        serving(_silent_stream) as base,
        SSEForwarder({"mute": sse_server(f"{base}/sse", timeout="1s")}).run() as forwarder,
    ):
        with pytest.raises(BackendError) as info:
            await forwarder.open("mute", ADA, Inbox())
        assert info.value.message == "service 'mute' sent no message endpoint within 1s"

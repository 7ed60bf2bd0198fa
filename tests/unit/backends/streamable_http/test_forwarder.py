"""StreamableHTTPForwarder against a real streamable-HTTP MCP server on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError
from mcp_front.backends.streamable_http import StreamableHTTPForwarder, StreamableHTTPUpstream, event_stream
from mcp_front.config import ServerConfig, UserTokenTemplate
from mcp_front.protocol.jsonrpc import Message
from tests.support.net import free_port
from tests.support.recorded_backend import running_backend
from tests.support.sinks import Inbox

ALICE = Principal(subject="alice-sub", email="alice@example.com")


def service_config(url: str, **extra: Any) -> ServerConfig:
    return ServerConfig.model_validate({"transportType": "streamable-http", "url": url, **extra})


def initialize(request_id: int | str = 1) -> Message:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }


def call(request_id: int | str, tool: str, progress_token: str | None = None, **arguments: Any) -> Message:
    params: dict[str, Any] = {"name": tool, "arguments": arguments}
    if progress_token is not None:
        params["_meta"] = {"progressToken": progress_token}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def text(response: Message) -> str:
    content = response["result"]["content"][0]
    assert isinstance(content["text"], str)
    return content["text"]


@asynccontextmanager
async def opened(
    backend_url: str, unsolicited: Inbox | None = None, **config: Any
) -> AsyncIterator[StreamableHTTPUpstream]:
    async with StreamableHTTPForwarder({"probe": service_config(backend_url, **config)}).run() as forwarder:
        upstream = await forwarder.open("probe", ALICE, unsolicited or Inbox())
        try:
            yield upstream
        finally:
            await upstream.aclose()


async def handshake(upstream: StreamableHTTPUpstream) -> Message:
    response = await upstream.request(initialize(), Inbox())
    await upstream.notify({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return response


@pytest.mark.parametrize("json_response", [False, True], ids=["sse", "json"])
async def test_requests_get_their_responses_under_the_clients_ids(json_response: bool) -> None:
    async with running_backend(json_response=json_response) as backend, opened(backend.url) as upstream:
        init = await handshake(upstream)
        assert init["id"] == 1
        assert init["result"]["serverInfo"]["name"] == "probe"
        assert upstream.session_id is not None
        listed = await upstream.request({"jsonrpc": "2.0", "id": "x", "method": "tools/list"}, Inbox())
        assert listed["id"] == "x"
        assert "echo" in {tool["name"] for tool in listed["result"]["tools"]}
        response = await upstream.request(call(7, "echo", text="hello"), Inbox())
        assert response["id"] == 7
        assert text(response) == "hello"
        posts = backend.headers_of("POST")
        assert {p.get("mcp-session-id") for p in posts[1:]} == {upstream.session_id}
        assert posts[-1]["mcp-protocol-version"] == "2025-06-18"
        assert all(p["accept"] == "application/json, text/event-stream" for p in posts)


async def test_concurrent_requests_with_the_same_client_id_do_not_collide() -> None:
    async with running_backend() as backend, opened(backend.url) as upstream:
        await handshake(upstream)
        async with anyio.create_task_group() as tg:
            results: dict[str, str] = {}

            async def one(word: str) -> None:
                results[word] = text(await upstream.request(call(1, "echo", text=word), Inbox()))

            for word in ("a", "b", "c", "d"):
                tg.start_soon(one, word)
        assert results == {w: w for w in "abcd"}


async def test_progress_and_logs_go_to_the_related_sink() -> None:
    unsolicited = Inbox()
    async with running_backend() as backend, opened(backend.url, unsolicited) as upstream:
        await handshake(upstream)
        related = Inbox()
        response = await upstream.request(call(2, "progress", progress_token="tok", steps=3), related)
        assert text(response) == "done 3"
        progress = [m for m in related.messages if m["method"] == "notifications/progress"]
        assert [m["params"]["progress"] for m in progress] == [1, 2, 3]
        assert {m["params"]["progressToken"] for m in progress} == {"tok"}

        related = Inbox()
        await upstream.request(
            {"jsonrpc": "2.0", "id": 3, "method": "logging/setLevel", "params": {"level": "debug"}}, Inbox()
        )
        await upstream.request(call(4, "log", message="hi there"), related)
        assert any(
            m["method"] == "notifications/message" and m["params"]["data"] == "hi there"
            for m in related.messages
        )
        assert "notifications/progress" not in unsolicited.methods()


async def test_a_server_request_is_answered_through_respond() -> None:
    # The SDK sends a tool's sampling request on the server's own (GET) stream.
    upstream: StreamableHTTPUpstream | None = None
    seen: list[str] = []

    async def answer(message: Message) -> None:
        seen.append(message.get("method", ""))
        if message.get("method") == "sampling/createMessage" and upstream is not None:
            result = {"role": "assistant", "content": {"type": "text", "text": "forty-two"}, "model": "m"}
            await upstream.respond({"jsonrpc": "2.0", "id": message["id"], "result": result})

    async with running_backend() as backend:
        async with StreamableHTTPForwarder({"probe": service_config(backend.url)}).run() as forwarder:
            upstream = await forwarder.open("probe", ALICE, answer)
            await handshake(upstream)
            related = Inbox()
            with anyio.fail_after(10):
                response = await upstream.request(call(5, "sample", prompt="meaning?"), related)
            assert text(response) == "forty-two"
            assert "sampling/createMessage" in seen + related.methods()


async def test_an_expired_backend_session_is_renewed_transparently() -> None:
    async with running_backend() as backend, opened(backend.url) as upstream:
        await handshake(upstream)
        first = upstream.session_id
        assert first is not None
        async with httpx2.AsyncClient() as http:
            deleted = await http.delete(backend.url, headers={"Mcp-Session-Id": first})
        assert deleted.status_code == 200
        response = await upstream.request(call(6, "echo", text="again"), Inbox())
        assert text(response) == "again"
        assert upstream.session_id not in (None, first)
        inits = [r for r in backend.headers_of("POST") if "mcp-session-id" not in r]
        assert len(inits) == 2


async def test_configured_headers_are_sent_rendered_for_the_principal() -> None:
    async def user_tokens(principal: Principal, service: str) -> str | None:
        return f"token-of-{principal.subject}-for-{service}"

    async with running_backend() as backend:
        server = service_config(
            backend.url,
            headers={
                "X-Api-Key": SecretStr("s3cret"),
                "X-User": "{{principal.email}}",
                "Authorization": UserTokenTemplate("Bearer {{token}}"),
            },
            requiresUserToken=True,
            userAuthentication={"type": "manual", "displayName": "Probe", "instructions": "Paste it"},
        )
        async with StreamableHTTPForwarder({"probe": server}, user_tokens=user_tokens).run() as forwarder:
            upstream = await forwarder.open("probe", ALICE, Inbox())
            await handshake(upstream)
            await upstream.request(call(1, "echo", text="x"), Inbox())
            await upstream.aclose()
        for request in backend.headers_of("POST"):
            assert request["x-api-key"] == "s3cret"
            assert request["x-user"] == "alice@example.com"
            assert request["authorization"] == "Bearer token-of-alice-sub-for-probe"
            assert "cookie" not in request


async def test_close_deletes_the_backend_session() -> None:
    async with running_backend() as backend, opened(backend.url) as upstream:
        await handshake(upstream)
        session_id = upstream.session_id
        await upstream.aclose()
        deletes = backend.headers_of("DELETE")
        assert [d["mcp-session-id"] for d in deletes] == [session_id]
        with pytest.raises(BackendError, match="closed"):
            await upstream.request(call(1, "echo", text="x"), Inbox())


async def test_the_server_stream_is_opened_after_initialized() -> None:
    async with running_backend() as backend, opened(backend.url) as upstream:
        await handshake(upstream)
        with anyio.fail_after(5):
            while not backend.headers_of("GET"):
                await anyio.sleep(0.02)
        get = backend.headers_of("GET")[0]
        assert get["accept"] == "text/event-stream"
        assert get["mcp-session-id"] == upstream.session_id


async def test_cancelling_the_caller_cancels_at_the_backend() -> None:
    async with running_backend() as backend, opened(backend.url) as upstream:
        await handshake(upstream)
        with anyio.move_on_after(0.5):
            await upstream.request(call(9, "sleep", seconds=30), Inbox())
        with anyio.fail_after(5):
            while len(backend.headers_of("POST")) < 4:
                await anyio.sleep(0.02)
        response = await upstream.request(call(10, "echo", text="still fine"), Inbox())
        assert text(response) == "still fine"


async def test_a_slow_backend_times_out_with_a_timeout_error() -> None:
    async with running_backend() as backend, opened(backend.url, timeout="1s") as upstream:
        await handshake(upstream)
        with anyio.fail_after(10), pytest.raises(BackendError) as caught:
            await upstream.request(call(9, "sleep", seconds=30), Inbox())
        assert caught.value.code == -32001
        assert "did not answer tools/call within 1s" in caught.value.message


async def test_a_backend_that_is_down_is_a_clear_error_without_url_secrets() -> None:
    url = f"http://user:pw-secret@127.0.0.1:{free_port()}/mcp?key=q-secret"
    async with opened(url) as upstream:
        with pytest.raises(BackendError) as caught:
            await upstream.request(initialize(), Inbox())
    message = caught.value.message
    assert message.startswith("service 'probe' is unreachable: ")
    assert "secret" not in message


async def test_a_backend_that_echoes_configured_headers_in_an_error_does_not_leak_them() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        seen = " ".join(value.decode() for _, value in scope["headers"])
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": f"I saw {seen}"}})
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    headers = {"Authorization": "Bearer hdr-secret-456", "X-Api-Key": "key-secret-789"}
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:
            await anyio.sleep(0.02)
        async with opened(f"http://127.0.0.1:{port}/mcp", headers=headers) as upstream:
            with pytest.raises(BackendError) as caught:
                await upstream.request(initialize(), Inbox())
        server.should_exit = True
    message = caught.value.message
    assert message.startswith("service 'probe' answered HTTP 500 Internal Server Error: I saw ")
    assert "secret" not in message


async def test_a_backend_that_is_not_mcp_says_so() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
        )
        await send({"type": "http.response.body", "body": b"<html></html>"})

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:
            await anyio.sleep(0.02)
        async with opened(f"http://127.0.0.1:{port}/mcp") as upstream:
            with pytest.raises(BackendError, match=r"not an MCP streamable-HTTP server.*text/html"):
                await upstream.request(initialize(), Inbox())
        server.should_exit = True


async def test_an_http_error_names_the_status() -> None:
    async with running_backend() as backend:
        async with opened(backend.url.replace("/mcp", "/nope")) as upstream:
            with pytest.raises(BackendError, match="answered HTTP 404"):
                await upstream.request(initialize(), Inbox())


@asynccontextmanager
async def scripted_backend(event_stream: bytes) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A raw backend: JSON for `initialize`, 202 for the rest of the POSTs, and
    `event_stream` (then the end of it) for every GET and every other request."""
    gets: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                message = json.loads(body) if body else {}
                if head.startswith(b"GET") or ("id" in message and message.get("method") != "initialize"):
                    if head.startswith(b"GET"):
                        gets.append(head)
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n"
                        % len(event_stream)
                        + event_stream
                    )
                elif message.get("method") == "initialize":
                    result = {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "serverInfo": {"name": "x"},
                    }
                    out = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s1\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(out) + out
                    )
                else:
                    writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/mcp", gets
    finally:
        server.close()


async def test_the_server_stream_outlives_whatever_breaks_it() -> None:
    notification = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "hi"}}
    stream = b"retry: \xc2\xb2\nid: \x1b\ndata: " + json.dumps(notification).encode() + b"\n\n"
    delivered: list[Message] = []

    async def fragile(message: Message) -> None:
        delivered.append(message)
        if len(delivered) == 1:
            raise RuntimeError("a sink that breaks once")

    async with scripted_backend(stream) as (url, gets):
        services = {"probe": service_config(url)}
        async with StreamableHTTPForwarder(services, reconnect_delay=0.01).run() as forwarder:
            upstream = await forwarder.open("probe", ALICE, fragile)
            await handshake(upstream)
            with anyio.fail_after(5):
                while len(delivered) < 3:
                    await anyio.sleep(0.01)
            await upstream.aclose()
    assert len(gets) >= 3
    assert delivered[-1] == notification


async def test_an_oversized_event_stream_answer_is_a_backend_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_stream, "MAX_LINE", 1000)
    answer = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "x" * 2000}]}}
    async with scripted_backend(b"data: " + json.dumps(answer).encode() + b"\n\n") as (url, _):
        async with opened(url) as upstream:
            await handshake(upstream)
            with pytest.raises(BackendError, match="too large"):
                await upstream.request(call(1, "echo"), Inbox())

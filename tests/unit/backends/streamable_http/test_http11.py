"""`BackendHTTP` against a scripted HTTP/1.1 server on a loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import httptools
import pytest

from mcp_front.backends.streamable_http.http11 import BackendHTTP, HTTPError, Target

Reply = Callable[[bytes], list[bytes]]
"""What the server writes back for a request (head and body as received)."""


class ScriptedServer:
    def __init__(self, reply: Reply, *, close_after: int | None = None) -> None:
        self.reply = reply
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + (await reader.readexactly(length) if length else b"")
                self.requests.append(request)
                for part in self.reply(request):
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(0)
                served += 1
                if self.close_after is not None and served >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(reply: Reply, **options: int) -> AsyncIterator[tuple[ScriptedServer, Target]]:
    server = ScriptedServer(reply, **options)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, Target.parse(f"http://127.0.0.1:{port}/mcp?x=1")
    finally:
        for writer in server.writers:
            writer.close()
        listener.close()


def json_reply(body: bytes = b'{"ok":true}', extra: bytes = b"") -> Reply:
    def reply(request: bytes) -> list[bytes]:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        return [head + extra + b"\r\n", body]

    return reply


async def post(client: BackendHTTP, target: Target, body: bytes = b"{}") -> tuple[int, bytes]:
    head = BackendHTTP.head("POST", target, [("Content-Type", "application/json")])
    async with client.request("POST", target, head, body) as response:
        return response.status_code, await response.aread()


async def test_requests_share_one_kept_alive_connection() -> None:
    async with serving(json_reply()) as (server, target):
        client = BackendHTTP()
        for _ in range(3):
            assert await post(client, target, b'{"n":1}') == (200, b'{"ok":true}')
        await client.aclose()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /mcp?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 7\r\n\r\n" in first
    assert first.endswith(b'{"n":1}')


async def test_a_chunked_body_arrives_piece_by_piece() -> None:
    def reply(request: bytes) -> list[bytes]:
        return [
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"6\r\nevent:\r\n",
            b"5\r\n one\n\r\n",
            b"0\r\n\r\n",
        ]

    async with serving(reply) as (_, target):
        client = BackendHTTP()
        head = BackendHTTP.head("GET", target, [])
        async with client.request("GET", target, head) as response:
            assert response.headers.get("content-type") == "text/event-stream"
            assert [chunk async for chunk in response.aiter_bytes()] == [b"event:", b" one\n"]
        assert client.connection_count == 1
        await client.aclose()


async def test_a_response_read_only_in_part_closes_its_connection() -> None:
    answered: list[bytes] = []

    def reply(request: bytes) -> list[bytes]:
        answered.append(request)
        if len(answered) == 1:  # the rest of this body never comes
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"x" * 10]
        return json_reply()(request)

    async with serving(reply) as (server, target):
        client = BackendHTTP()
        head = BackendHTTP.head("POST", target, [])
        async with client.request("POST", target, head, b"{}") as response:
            assert await response.aread(limit=10) == b"x" * 10
        assert client.connection_count == 0
        assert await post(client, target) == (200, b'{"ok":true}')
        await client.aclose()
    assert server.connections == 2


async def test_connection_close_is_honoured() -> None:
    async with serving(json_reply(extra=b"Connection: close\r\n")) as (server, target):
        client = BackendHTTP()
        await post(client, target)
        await post(client, target)
        await client.aclose()
    assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    async with serving(json_reply(), close_after=1) as (server, target):
        client = BackendHTTP()
        assert await post(client, target) == (200, b'{"ok":true}')
        await anyio.sleep(0.05)
        assert await post(client, target) == (200, b'{"ok":true}')
        await client.aclose()
    assert server.connections == 2


async def test_interim_responses_are_skipped() -> None:
    def reply(request: bytes) -> list[bytes]:
        return [b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", *json_reply()(request)]

    async with serving(reply) as (_, target):
        client = BackendHTTP()
        assert await post(client, target) == (200, b'{"ok":true}')
        await client.aclose()


async def test_a_broken_response_is_an_error_and_the_connection_is_dropped() -> None:
    async with serving(lambda request: [b"HTTP/1.1 abc\r\n\r\n"]) as (_, target):
        client = BackendHTTP()
        with pytest.raises(HTTPError, match="broke the HTTP protocol"):
            await post(client, target)
        assert client.connection_count == 0
        await client.aclose()


async def test_a_closed_port_is_an_error() -> None:
    async with serving(json_reply()) as (_, target):
        pass
    with pytest.raises(HTTPError):
        await post(BackendHTTP(), target)


def test_header_values_cannot_inject_lines() -> None:
    target = Target.parse("https://backend.internal/mcp")
    with pytest.raises(HTTPError, match="line break"):
        BackendHTTP.head("POST", target, [("X-Token", "a\r\nX-Admin: 1")])
    assert (
        BackendHTTP.head("GET", target, [("A", "b")])
        == b"GET /mcp HTTP/1.1\r\nHost: backend.internal\r\nA: b\r\n"
    )


def test_only_absolute_http_urls_are_targets() -> None:
    for url in ("ftp://x/y", "/mcp", "http:///nohost"):
        with pytest.raises(HTTPError):
            Target.parse(url)
    assert Target.parse("http://[::1]:8080").origin.host_header == "[::1]:8080"


def test_header_names_and_values_cannot_hold_control_characters() -> None:
    target = Target.parse("https://backend.internal/mcp")
    for name, value in (("X-Token", "a\x00b"), ("X-Token", "a\x1bb"), ("X-\x01", "v"), ("X-T", "a\x7f")):
        with pytest.raises(HTTPError, match="control character"):
            BackendHTTP.head("POST", target, [(name, value)])
    assert BackendHTTP.head("GET", target, [("A", "b\tc")]).endswith(b"A: b\tc\r\n")


def test_a_header_that_is_not_latin_1_is_an_http_error() -> None:
    target = Target.parse("https://backend.internal/mcp")
    with pytest.raises(HTTPError, match="not Latin-1"):
        BackendHTTP.head("POST", target, [("X-Name", "€")])


def drop_second_request() -> Reply:
    """Answers the first request; reads the second and closes without a byte of answer."""
    seen: list[bytes] = []

    def reply(request: bytes) -> list[bytes]:
        seen.append(request)
        if len(seen) == 2:
            raise ConnectionResetError
        return json_reply()(request)

    return reply


async def test_a_post_is_not_sent_twice_when_the_connection_drops_after_it() -> None:
    async with serving(drop_second_request()) as (server, target):
        client = BackendHTTP()
        assert await post(client, target, b'{"n":1}') == (200, b'{"ok":true}')
        with pytest.raises(HTTPError, match="closed"):
            await post(client, target, b'{"n":2}')
        await client.aclose()
    assert [request.endswith(b'{"n":2}') for request in server.requests] == [False, True]


async def test_a_get_is_sent_again_when_the_connection_drops_after_it() -> None:
    async with serving(drop_second_request()) as (server, target):
        client = BackendHTTP()
        assert await post(client, target) == (200, b'{"ok":true}')
        head = BackendHTTP.head("GET", target, [])
        async with client.request("GET", target, head) as response:
            assert await response.aread() == b'{"ok":true}'
        await client.aclose()
    assert [request.startswith(b"GET") for request in server.requests] == [False, True, True]
    assert server.connections == 2


async def test_response_headers_are_bounded() -> None:
    def reply(request: bytes) -> list[bytes]:
        pad = [b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(100)]
        return [b"HTTP/1.1 200 OK\r\n", *pad, b"Content-Length: 0\r\n\r\n"]

    async with serving(reply) as (_, target):
        client = BackendHTTP()
        with anyio.fail_after(5), pytest.raises(HTTPError, match="response head over"):
            await post(client, target)
        assert client.connection_count == 0
        await client.aclose()


async def test_a_reason_phrase_is_bounded() -> None:
    async with serving(lambda request: [b"HTTP/1.1 200 " + b"R" * 5000 + b"\r\n\r\n"]) as (_, target):
        client = BackendHTTP()
        with anyio.fail_after(5), pytest.raises(HTTPError, match="reason phrase"):
            await post(client, target)
        await client.aclose()


async def test_a_body_without_length_ends_with_the_connection() -> None:
    def reply(request: bytes) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n", b'{"ok":', b"true}"]

    async with serving(reply, close_after=1) as (server, target):
        client = BackendHTTP()
        with anyio.fail_after(5):
            assert await post(client, target) == (200, b'{"ok":true}')
            assert client.connection_count == 0
            assert await post(client, target) == (200, b'{"ok":true}')
        await client.aclose()
    assert server.connections == 2


async def test_a_response_past_the_answer_puts_the_connection_out_of_step() -> None:
    def reply(request: bytes) -> list[bytes]:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
        return [answer + b"hello" + answer + b"EVIL!"]

    async with serving(reply) as (server, target):
        client = BackendHTTP()
        with anyio.fail_after(5):
            assert await post(client, target) == (200, b"hello")
            assert client.connection_count == 0
            assert await post(client, target) == (200, b"hello")
        await client.aclose()
    assert server.connections == 2


async def test_bytes_on_an_idle_connection_close_it() -> None:
    def reply(request: bytes) -> list[bytes]:
        return [*json_reply()(request), b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"]

    async with serving(reply) as (server, target):
        client = BackendHTTP()
        with anyio.fail_after(5):
            assert await post(client, target) == (200, b'{"ok":true}')
            await anyio.sleep(0.05)
            assert client.connection_count == 0
            assert await post(client, target) == (200, b'{"ok":true}')
        await client.aclose()
    assert server.connections == 2


async def test_each_request_gets_a_fresh_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[object] = []
    real = httptools.HttpResponseParser

    def parser(protocol: object) -> object:
        created.append(protocol)
        return real(protocol)

    monkeypatch.setattr(httptools, "HttpResponseParser", parser)
    async with serving(json_reply()) as (server, target):
        client = BackendHTTP()
        for _ in range(3):
            assert await post(client, target) == (200, b'{"ok":true}')
        await client.aclose()
    assert server.connections == 1
    assert len(created) == 3

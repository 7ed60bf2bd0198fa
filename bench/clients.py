"""The MCP clients the benchmark drives: lean raw ones, and the SDK's for reference.

Every client is a session that can call the `echo` tool and return the text it got
back. A session factory opens one (spawning the server or starting the HTTP session
with `initialize` and `notifications/initialized`) and closes it on exit.

The raw clients do the least a conforming client must: the raw stdio client writes one
JSON line and reads lines until the answer with its id; the raw HTTP client posts one
message per request and reads a JSON body or an event stream to its end, so the
connection goes back to the pool. One raw HTTP client serves every HTTP target.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeAlias

import anyio
import httpx2
from anyio.abc import Process, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from bench.processes import BenchError

PROTOCOL_VERSION = "2025-06-18"
ACCEPT = "application/json, text/event-stream"
CLIENT_INFO = {"name": "mcp-front-bench", "version": "1.0"}
MAX_LINE_BYTES = 1024 * 1024
CALL_TIMEOUT = 30.0
"""Seconds any single request may take before the benchmark gives up on it."""

Message: TypeAlias = dict[str, Any]


class EchoSession(Protocol):
    async def echo(self, text: str) -> str:
        """Call the `echo` tool and return the text of its result."""
        ...


SessionFactory: TypeAlias = Callable[[], AbstractAsyncContextManager[EchoSession]]


def initialize_request(request_id: int) -> Message:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO},
    }


INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def echo_request(request_id: int, text: str) -> Message:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}},
    }


def tools_list_request(request_id: int) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/list", "params": {}}


def result_tools(response: Message | None) -> list[Message]:
    """The tools of a `tools/list` answer; raises `BenchError` on anything else."""
    result = response.get("result") if response is not None else None
    tools = result.get("tools") if isinstance(result, dict) else None
    if not isinstance(tools, list):
        raise BenchError(f"tools/list failed: {json.dumps(response)[:300]}")
    return tools


def result_text(response: Message) -> str:
    """The text of a `tools/call` answer; raises `BenchError` on anything else."""
    result = response.get("result")
    if not isinstance(result, dict) or result.get("isError"):
        raise BenchError(f"tools/call failed: {json.dumps(response)[:300]}")
    content = result.get("content")
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        raise BenchError(f"tools/call returned no content: {json.dumps(response)[:300]}")
    text = content[0].get("text")
    if not isinstance(text, str):
        raise BenchError(f"tools/call returned no text: {json.dumps(response)[:300]}")
    return text


def _encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


# -- raw stdio -----------------------------------------------------------------------------


class RawStdioSession:
    """Newline-delimited JSON-RPC over a child's stdin and stdout, one request at a time."""

    def __init__(self, process: Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self._stdin = process.stdin
        self._reader = BufferedByteReceiveStream(process.stdout)
        self._ids = itertools.count(1)

    async def request(self, message: Message) -> Message:
        await self._stdin.send(_encode(message) + b"\n")
        while True:
            line = await self._reader.receive_until(b"\n", MAX_LINE_BYTES)
            if not line.strip():
                continue
            answer: Message = json.loads(line)
            if answer.get("id") == message["id"] and "method" not in answer:
                return answer

    async def notify(self, message: Message) -> None:
        await self._stdin.send(_encode(message) + b"\n")

    async def handshake(self) -> None:
        response = await self.request(initialize_request(next(self._ids)))
        if "result" not in response:
            raise BenchError(f"initialize failed: {response}")
        await self.notify(INITIALIZED)

    async def echo(self, text: str) -> str:
        return result_text(await self.request(echo_request(next(self._ids), text)))


def raw_stdio_factory(command: list[str]) -> SessionFactory:
    """Spawn `command` in its own process group per session and talk to it directly."""

    @asynccontextmanager
    async def open_session() -> AsyncIterator[EchoSession]:
        process = await anyio.open_process(command, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            session = RawStdioSession(process)
            await session.handshake()
            yield session
        finally:
            await _stop_child(process)

    return open_session


async def _stop_child(process: Process) -> None:
    """Close stdin (the stdio way to end a server), then SIGTERM and SIGKILL its group."""
    with anyio.CancelScope(shield=True):
        if process.stdin is not None:
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await process.stdin.aclose()
        with anyio.move_on_after(2):
            await process.wait()
        for signum in (signal.SIGTERM, signal.SIGKILL):
            if process.returncode is not None:
                break
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signum)
            with anyio.move_on_after(2):
                await process.wait()
        await process.aclose()


# -- SDK stdio -----------------------------------------------------------------------------


class SDKSession:
    """The SDK's high-level `Client`, whichever transport it runs over."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def echo(self, text: str) -> str:
        result = await self._client.call_tool("echo", {"text": text})
        first = result.content[0] if result.content else None
        if result.is_error or not isinstance(first, TextContent):
            raise BenchError(f"tools/call failed through the SDK client: {result}")
        return first.text


def sdk_stdio_factory(command: list[str], errlog: TextIO) -> SessionFactory:
    """The SDK's `stdio_client` (spawns the server itself) under `Client`, legacy handshake."""
    parameters = StdioServerParameters(command=command[0], args=command[1:])

    @asynccontextmanager
    async def open_session() -> AsyncIterator[EchoSession]:
        async with Client(stdio_client(parameters, errlog=errlog), mode="legacy") as client:
            yield SDKSession(client)

    return open_session


def sdk_http_factory(url: str, headers: Mapping[str, str]) -> SessionFactory:
    """The SDK's `streamable_http_client` under `Client`, legacy handshake."""

    @asynccontextmanager
    async def open_session() -> AsyncIterator[EchoSession]:
        timeout = httpx2.Timeout(CALL_TIMEOUT)
        async with (
            httpx2.AsyncClient(headers=dict(headers), timeout=timeout) as http,
            Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
        ):
            yield SDKSession(client)

    return open_session


# -- raw streamable HTTP --------------------------------------------------------------------


class HTTPSession:
    """One streamable-HTTP MCP session: POST per message, JSON or SSE answers."""

    def __init__(self, client: httpx2.AsyncClient, url: str, headers: Mapping[str, str]) -> None:
        self._client = client
        self._url = url
        self._headers = {"accept": ACCEPT, "content-type": "application/json", **headers}
        self._ids = itertools.count(1)
        self.session_id: str | None = None

    async def open(self) -> None:
        response, headers = await self._post(initialize_request(next(self._ids)))
        if response is None or "result" not in response:
            raise BenchError(f"initialize failed at {self._url}: {response}")
        session_id = headers.get("mcp-session-id")
        if session_id:
            self.session_id = session_id
            self._headers["mcp-session-id"] = session_id
        version = response["result"].get("protocolVersion", PROTOCOL_VERSION)
        self._headers["mcp-protocol-version"] = str(version)
        await self._post(INITIALIZED)

    async def close(self) -> None:
        if self.session_id is None:
            return
        with suppress(httpx2.HTTPError):
            await self._client.delete(self._url, headers=self._headers)
        self.session_id = None

    async def echo(self, text: str) -> str:
        response, _ = await self._post(echo_request(next(self._ids), text))
        if response is None:
            raise BenchError(f"tools/call at {self._url} got no answer")
        return result_text(response)

    async def list_tools(self) -> list[Message]:
        """`tools/list` (one page, no cursor): the tools it returned."""
        response, _ = await self._post(tools_list_request(next(self._ids)))
        return result_tools(response)

    async def _post(self, message: Message) -> tuple[Message | None, httpx2.Headers]:
        """Send one message; the answer to it (if it is a request) and the response headers."""
        request_id = message.get("id")
        async with self._client.stream(
            "POST", self._url, content=_encode(message), headers=self._headers
        ) as response:
            if response.status_code == 202:
                await response.aread()
                return None, response.headers
            if response.status_code != 200:
                body = (await response.aread()).decode(errors="replace")[:300]
                raise BenchError(f"POST {self._url} answered {response.status_code}: {body}")
            content_type = response.headers.get("content-type", "")
            if content_type.startswith("application/json"):
                answer: Message = json.loads(await response.aread())
                return answer, response.headers
            if not content_type.startswith("text/event-stream"):
                raise BenchError(f"POST {self._url} answered with content type {content_type!r}")
            found: Message | None = None
            async for event in _sse_messages(response.aiter_lines()):
                if request_id is not None and event.get("id") == request_id and "method" not in event:
                    found = event
            return found, response.headers


async def _sse_messages(lines: AsyncIterator[str]) -> AsyncIterator[Message]:
    """JSON-RPC messages from the `data:` fields of an event stream."""
    data: list[str] = []
    async for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif not line and data:
            payload = "\n".join(data)
            data = []
            decoded = json.loads(payload)
            if isinstance(decoded, dict):
                yield decoded
    if data:
        decoded = json.loads("\n".join(data))
        if isinstance(decoded, dict):
            yield decoded


def new_http_client(connections: int) -> httpx2.AsyncClient:
    """The connection pool every raw HTTP session of one target shares."""
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(CALL_TIMEOUT))


def raw_http_factory(client: httpx2.AsyncClient, url: str, headers: Mapping[str, str]) -> SessionFactory:
    @asynccontextmanager
    async def open_session() -> AsyncIterator[EchoSession]:
        session = HTTPSession(client, url, headers)
        try:
            await session.open()
            yield session
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CALL_TIMEOUT):
                await session.close()

    return open_session


# -- single-write HTTP/1.1 over a plain socket ----------------------------------------------


class SocketHTTPSession:
    """The same exchange as `HTTPSession`, hand-written over one keep-alive TCP connection.

    Each request leaves in a single write (httpx2 writes headers and body separately,
    which wakes the server twice) and the client does almost no work of its own, so
    its round trip is close to what the server alone costs. Bodies may be sized or
    chunked, JSON or an event stream.
    """

    def __init__(self, host: str, port: int, path: str, headers: Mapping[str, str]) -> None:
        self._host = host
        self._port = port
        self._path = path
        self._headers = {
            "host": f"{host}:{port}",
            "accept": ACCEPT,
            "content-type": "application/json",
            **headers,
        }
        self._ids = itertools.count(1)
        self._stream: SocketStream | None = None
        self._reader: BufferedByteReceiveStream | None = None
        self.session_id: str | None = None

    async def open(self) -> None:
        response, headers = await self._exchange("POST", initialize_request(next(self._ids)))
        if response is None or "result" not in response:
            raise BenchError(f"initialize failed at {self._path}: {response}")
        session_id = headers.get("mcp-session-id")
        if session_id:
            self.session_id = session_id
            self._headers["mcp-session-id"] = session_id
        self._headers["mcp-protocol-version"] = str(response["result"].get("protocolVersion"))
        await self._exchange("POST", INITIALIZED)

    async def close(self) -> None:
        try:
            if self.session_id is not None:
                with suppress(OSError, anyio.EndOfStream, anyio.BrokenResourceError, BenchError):
                    await self._exchange("DELETE", None)
        finally:
            if self._stream is not None:
                await self._stream.aclose()
            self._stream = self._reader = None

    async def echo(self, text: str) -> str:
        response, _ = await self._exchange("POST", echo_request(next(self._ids), text))
        if response is None:
            raise BenchError(f"tools/call at {self._path} got no answer")
        return result_text(response)

    async def list_tools(self) -> list[Message]:
        """`tools/list` (one page, no cursor): the tools it returned."""
        response, _ = await self._exchange("POST", tools_list_request(next(self._ids)))
        return result_tools(response)

    async def drop_connection(self) -> None:
        """Close the TCP connection (the session stays): the next request opens a new one."""
        if self._stream is not None:
            with suppress(OSError, anyio.BrokenResourceError):
                await self._stream.aclose()
        self._stream = self._reader = None

    async def _exchange(self, method: str, message: Message | None) -> tuple[Message | None, dict[str, str]]:
        if self._stream is None or self._reader is None:
            self._stream = await anyio.connect_tcp(self._host, self._port)
            self._reader = BufferedByteReceiveStream(self._stream)
        body = _encode(message) if message is not None else b""
        head = f"{method} {self._path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in self._headers.items()
        )
        await self._stream.send(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
        status, headers, payload = await _read_response(self._reader)
        if headers.get("connection", "").lower() == "close":
            await self._stream.aclose()
            self._stream = self._reader = None
        if status == 202 or method == "DELETE":
            return None, headers
        if status != 200:
            raise BenchError(f"{method} {self._path} answered {status}: {payload[:300]!r}")
        if headers.get("content-type", "").startswith("text/event-stream"):
            request_id = message.get("id") if message is not None else None
            for event in _sse_payload_messages(payload):
                if event.get("id") == request_id and "method" not in event:
                    return event, headers
            return None, headers
        answer: Message = json.loads(payload)
        return answer, headers


async def _read_response(reader: BufferedByteReceiveStream) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers and whole body of one HTTP/1.1 response."""
    head = (await reader.receive_until(b"\r\n\r\n", MAX_LINE_BYTES)).decode("latin-1")
    status_line, *header_lines = head.split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        length = int(headers["content-length"])
        return status, headers, await reader.receive_exactly(length) if length else b""
    if headers.get("transfer-encoding", "").lower() != "chunked":
        if status in (202, 204, 304) or 100 <= status < 200:
            return status, headers, b""
        raise BenchError(f"a response with neither content-length nor chunked encoding (status {status})")
    chunks: list[bytes] = []
    while True:
        size = int((await reader.receive_until(b"\r\n", 1024)).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.receive_until(b"\r\n", MAX_LINE_BYTES):
                pass  # trailer fields, up to the empty line
            return status, headers, b"".join(chunks)
        chunks.append(await reader.receive_exactly(size))
        await reader.receive_exactly(2)


def _sse_payload_messages(payload: bytes) -> list[Message]:
    messages: list[Message] = []
    for block in payload.decode().replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if data:
            decoded = json.loads("\n".join(data))
            if isinstance(decoded, dict):
                messages.append(decoded)
    return messages


def socket_http_factory(host: str, port: int, path: str, headers: Mapping[str, str]) -> SessionFactory:
    @asynccontextmanager
    async def open_session() -> AsyncIterator[EchoSession]:
        session = SocketHTTPSession(host, port, path, headers)
        try:
            await session.open()
            yield session
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CALL_TIMEOUT):
                await session.close()

    return open_session


def devnull_text() -> TextIO:
    """A writable text file that discards output: stderr for children the SDK spawns."""
    return Path(os.devnull).open("w")

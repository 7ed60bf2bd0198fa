"""A lean HTTP/1.1 client for the requests the gateway makes to streamable-HTTP backends.

Every client request crosses the gateway as one backend request, so that request is on
the hot path of every call. A general-purpose client spends most of its time on what
this one does not need: URL merging, cookies, authentication flows, redirects, event
hooks, and a request and response model per call. Here a request is one prepared header
block and one socket write; the response is parsed by llhttp (`httptools`, which the
ASGI server already uses) as it arrives, with the body streamed, never buffered whole.

Connections are kept alive per origin. A connection the backend closed while it sat
idle is noticed when the close arrives and never reused; the rare request that still
races a close, and fails before any byte of the answer, is retried once on a new
connection if it never left or may run twice (GET, HEAD, DELETE): a POST that was
written may have taken effect. Bytes that no request asked for (after a response, or
on an idle connection) put the connection out of step, and it is closed. Redirects are
not followed and no cookies are kept: a backend session must not leak into another
user's.
"""

from __future__ import annotations

import asyncio
import collections
import re
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlsplit

import anyio
import httptools

from mcp_front.errors import MCPFrontError

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
_HIGH_WATER: Final = 1024 * 1024
"""Unread body bytes past which the socket stops being read, so a slow consumer of a
fast stream does not grow memory without bound."""
MAX_RESPONSE_HEAD: Final = 64 * 1024
"""Bytes of a response's status line and headers past which the backend is cut off."""
MAX_REASON: Final = 1024
"""Characters of a reason phrase past which the backend is cut off."""
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "DELETE"})
"""Methods a request may be sent twice with; a POST may have taken effect already."""
_CONTROL_IN_NAME: Final = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_VALUE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class HTTPError(MCPFrontError):
    """The backend could not be reached, or broke the connection or the protocol."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed URL: where to connect, and the request target to send."""

    origin: Origin
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HTTPError("the URL is not an absolute http:// or https:// URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        return cls(Origin(parts.scheme, parts.hostname, port), path)


def without_url_secrets(text: str, url: str, header_values: Iterable[str] = ()) -> str:
    """`text` without `url` or its credentials or query, nor the configured header values
    (or the credential after their scheme, as in ``Bearer <token>``), which may hold
    secrets: what an error about a request to `url` may say, even one that quotes the
    backend, which may echo what it was sent."""
    secrets: list[str] = []
    if url:
        parts = urlsplit(url)
        secrets.append(url)
        secrets += [part for part in (parts.query, parts.username, parts.password) if part]
    for value in header_values:
        secrets.append(value)
        scheme, _, credential = value.partition(" ")
        if credential and scheme.isalpha():
            secrets.append(credential.strip())
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


_MIN_SECRET = 4
"""Shorter values are left alone: replacing every "on" or "1" would garble the message."""


class Headers:
    """Response headers by lower-case name; a repeated header keeps its last value."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._values = {name.lower(): value for name, value in items}

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values


class _Connection(asyncio.Protocol):
    """One keep-alive connection, parsing one response at a time."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._error: BaseException | None = None
        self._violation: HTTPError | None = None
        self._parser: httptools.HttpResponseParser | None = None
        """A fresh parser per request; `None` while no request is in flight."""
        self._wakeup = asyncio.Event()
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.reason = ""
        self.header_items: list[tuple[str, str]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.received_any = False
        self.written = False
        self._until_close = False
        self._head_bytes = 0
        self._body: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._header_name = b""

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._parser is None or self.complete:
            # Bytes no request asked for: what follows on this connection cannot be
            # matched to a request any more.
            self._fail(HTTPError("the backend sent data that no request asked for"))
            self._wakeup.set()
            return
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(self._violation or HTTPError(f"the backend broke the HTTP protocol: {exc}"))
        else:
            if not self.headers_done:
                self._head_bytes += len(data)
                if self._head_bytes > MAX_RESPONSE_HEAD:
                    self._fail(HTTPError(f"the backend sent a response head over {MAX_RESPONSE_HEAD} bytes"))
        self._wakeup.set()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._until_close and not self.complete and self._error is None and exc is None:
            # A body without a length ends where the connection does.
            self.complete = True
            self.keep_alive = False
        if not self.complete and self._error is None:
            self._error = HTTPError("the backend closed the connection")
        self._wakeup.set()

    # -- httptools callbacks -------------------------------------------------------------

    def _violate(self, error: HTTPError) -> None:
        """Stop the parser: `data_received` fails the connection with `error`."""
        self._violation = error
        raise error

    def on_message_begin(self) -> None:
        if self.complete:
            self._violate(HTTPError("the backend sent data that no request asked for"))

    def on_status(self, status: bytes) -> None:
        self.reason += status.decode("latin-1")
        if len(self.reason) > MAX_REASON:
            self._violate(HTTPError(f"the backend sent a reason phrase over {MAX_REASON} characters"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_items.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self.status = self._parser.get_status_code()
        if 100 <= self.status < 200:
            # An interim response (100 Continue, 103 Early Hints): the real one follows.
            self.header_items, self.reason = [], ""
            return
        self.headers_done = True
        headers = Headers(self.header_items)
        coding = (headers.get("transfer-encoding") or "").rsplit(",", 1)[-1].strip().lower()
        self._until_close = "content-length" not in headers and coding != "chunked"

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:
            return
        assert self._parser is not None
        self.keep_alive = self._parser.should_keep_alive()
        self.complete = True

    # -- the client's side ---------------------------------------------------------------

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, data: bytes) -> None:
        self._reset()
        self._violation = None
        self._wakeup.clear()
        if self.closed or self.transport is None:
            raise HTTPError("the backend closed the connection")
        self._parser = httptools.HttpResponseParser(self)
        self.transport.write(data)
        self.written = True

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        await self._wakeup.wait()
        self._wakeup.clear()
        if self._error is not None and not self._body:
            raise self._error

    async def wait_headers(self) -> None:
        while not self.headers_done:
            await self._wait()

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body, or `None` at its end."""
        while not self._body:
            if self.complete:
                return None
            await self._wait()
        chunk = self._body.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < _HIGH_WATER // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self._error is None


class Response:
    """The status and headers of a backend's answer, and its body as a stream."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status_code = connection.status
        self.reason_phrase = connection.reason
        self.headers = Headers(connection.header_items)

    @property
    def media_type(self) -> str:
        """The `Content-Type` without its parameters, lower-cased; "" when there is none."""
        return (self.headers.get("content-type") or "").split(";", 1)[0].strip().lower()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        while (chunk := await self._connection.next_chunk()) is not None:
            yield chunk

    async def aread(self, limit: int | None = None) -> bytes:
        """The whole body; with `limit`, at most that many bytes of it (the rest unread)."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.aiter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                break
        body = b"".join(parts)
        return body if limit is None else body[:limit]


class BackendHTTP:
    """Pooled keep-alive HTTP/1.1 connections to backends."""

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_idle_per_origin: int = 100,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.max_idle_per_origin = max_idle_per_origin
        self._ssl_context = ssl_context
        self._idle: dict[Origin, collections.deque[_Connection]] = {}
        self._all: set[_Connection] = set()

    @staticmethod
    def head(method: str, target: Target, headers: Iterable[tuple[str, str]]) -> bytes:
        """The request line and headers, `Host` first, ready to be followed by a body."""
        lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.origin.host_header}"]
        for name, value in headers:
            if _CONTROL_IN_NAME.search(name) or _CONTROL_IN_VALUE.search(value):
                raise HTTPError(f"the header {name!r} holds a line break or another control character")
            lines.append(f"{name}: {value}")
        try:
            return ("\r\n".join(lines) + "\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise HTTPError("the request line or a header holds a character that is not Latin-1") from None

    @asynccontextmanager
    async def request(
        self, method: str, target: Target, head: bytes, body: bytes | None = None
    ) -> AsyncIterator[Response]:
        """Send a request whose `head` came from `head()`; the response is read as it is
        consumed, and its connection goes back to the pool once the body has been read."""
        framing = f"Content-Length: {len(body)}\r\n\r\n".encode() if body is not None else b"\r\n"
        data = head + framing + (body or b"")
        connection, reused = await self._acquire(target.origin)
        try:
            try:
                connection.send(data)
                await connection.wait_headers()
            except HTTPError:
                if not (
                    reused
                    and not connection.received_any
                    and (not connection.written or method in _IDEMPOTENT)
                ):
                    raise
                # The backend closed the idle connection just as it was reused, before
                # answering anything. Seen closed before the write, the request never
                # left; written, it may have reached the backend, and only a request
                # that may run twice is sent again.
                connection.close()
                self._all.discard(connection)
                connection = await self._connect(target.origin)
                connection.send(data)
                await connection.wait_headers()
            yield Response(connection)
        finally:
            self._release(connection)

    async def _acquire(self, origin: Origin) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection, True
            self._all.discard(connection)
        return await self._connect(origin), False

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if origin.scheme == "https":
            context = self._ssl_context or ssl.create_default_context()
        try:
            with anyio.fail_after(self.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Connection(origin), origin.host, origin.port, ssl=context
                )
        except TimeoutError:
            raise HTTPError(f"no connection within {self.connect_timeout:g}s") from None
        except OSError as exc:
            raise HTTPError(exc.strerror or type(exc).__name__) from None
        self._all.add(protocol)
        return protocol

    def _release(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.origin, collections.deque())
        if connection.reusable and len(idle) < self.max_idle_per_origin:
            idle.append(connection)
            return
        # An answer left unread (a cancelled request, a stream given up) would be read
        # as the next request's: the connection cannot be reused.
        connection.close()
        self._all.discard(connection)

    @property
    def connection_count(self) -> int:
        return sum(1 for connection in self._all if not connection.closed)

    async def aclose(self) -> None:
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()

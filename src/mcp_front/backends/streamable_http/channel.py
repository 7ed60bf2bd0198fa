"""`HTTPChannel`: how one client session's messages reach a streamable-HTTP backend.

The channel is what the session's parts share: the exchange of requests and answers
(`upstream`), the server's own GET stream (`server_stream`) and 2026-07-28 requests
sent natively (`v2026_07_28`). It holds the backend's URL and configured headers,
rendered for the session's principal, the backend session id and negotiated protocol
version, and sends over the forwarder's pool of keep-alive connections. Only the
service's configured headers reach the backend: the client's `Authorization` and
`Cookie` headers never arrive at this layer, so they cannot be forwarded.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from mcp_front.backends.base import BackendError
from mcp_front.backends.session import BackendSession
from mcp_front.backends.streamable_http import http11
from mcp_front.backends.streamable_http.event_stream import ServerSentEvent
from mcp_front.errors import MCPFrontError
from mcp_front.protocol import headers, jsonrpc
from mcp_front.protocol.jsonrpc import Message, MessageKind

DEFAULT_TIMEOUT: Final = timedelta(seconds=60)
"""How long a request waits for its answer when the service sets no `timeout`."""

_ACCEPT: Final = "application/json, text/event-stream"
_ERROR_BODY_LIMIT: Final = 4096
_MAX_CACHED_HEADS: Final = 16

Extra = tuple[tuple[str, str], ...]
"""Header fields a request adds to the channel's own."""


class SessionExpired(MCPFrontError):
    """The backend answered 404 for the session id the channel sent."""


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A request ready to send: its head is built once and shared by the session's calls."""

    method: str
    target: http11.Target
    head: bytes
    body: bytes | None
    session_id: str | None
    """The backend session it was built for, to tell a 404 that means the session expired."""


class HTTPChannel:
    """The HTTP side of one backend session."""

    def __init__(self, session: BackendSession, http: http11.BackendHTTP) -> None:
        self.session = session
        self.http = http
        self.session_id: str | None = None
        """The backend's `Mcp-Session-Id`; `None` before `initialize` and for 2026-07-28 requests."""
        self.protocol_version: str | None = None
        """The version the backend's `initialize` result named, sent on every later request."""
        self.generation = 0
        """How many backend sessions the channel has started, to tell a renewal that happened."""
        self._url: str | None = None
        self._headers: dict[str, str] | None = None
        self._heads: dict[tuple[Any, ...], tuple[http11.Target, bytes]] = {}

    @property
    def service(self) -> str:
        return self.session.service

    @property
    def timeout(self) -> float:
        """The longest a request waits for its final answer, events included."""
        return (self.session.server.timeout or DEFAULT_TIMEOUT).total_seconds()

    @property
    def closed(self) -> bool:
        return self.session.closed

    def start_session(self, session_id: str | None) -> None:
        """Adopt the session id an `initialize` answer carried."""
        self.session_id = session_id or None
        self.generation += 1

    def end_session(self) -> None:
        """Forget the backend session, and the rendering of the URL and headers, so a user
        token refreshed since is picked up by the next one."""
        self.session_id = None
        self._url = self._headers = None

    async def build(
        self, method: str, message: Message | None = None, *, extra: Extra = ()
    ) -> OutgoingRequest:
        url, configured = await self._prepare()
        # The head of a request depends only on these, so a session's calls share one.
        key = (method, self.session_id, self.protocol_version, extra)
        prepared = self._heads.get(key)
        if prepared is None:
            try:
                target = http11.Target.parse(url)
                fields = [
                    *configured.items(),
                    ("Accept", "text/event-stream" if method == "GET" else _ACCEPT),
                ]
                if self.session_id is not None:
                    fields.append((headers.SESSION_ID, self.session_id))
                if self.protocol_version is not None:
                    fields.append((headers.PROTOCOL_VERSION, self.protocol_version))
                if method == "POST":
                    fields.append(("Content-Type", "application/json"))
                fields.extend(extra)
                prepared = target, http11.BackendHTTP.head(method, target, fields)
            except http11.HTTPError as exc:
                raise BackendError(f"service '{self.service}' cannot be reached: {exc}") from None
            if len(self._heads) >= _MAX_CACHED_HEADS:
                self._heads.clear()
            self._heads[key] = prepared
        target, head = prepared
        body = jsonrpc.encode(message) if message is not None else None
        return OutgoingRequest(method, target, head, body, self.session_id)

    @asynccontextmanager
    async def send(self, request: OutgoingRequest) -> AsyncIterator[http11.Response]:
        try:
            async with self.http.request(
                request.method, request.target, request.head, request.body
            ) as response:
                yield response
        except http11.HTTPError as exc:
            raise self.unreachable(exc) from None

    def check_session(self, request: OutgoingRequest, response: http11.Response) -> None:
        """Raise `SessionExpired` when the backend answered 404 for the session `request` carried."""
        if request.session_id is not None and response.status_code == 404:
            if self.session_id == request.session_id:
                self.session_id = None
            raise SessionExpired

    async def check_status(self, response: http11.Response) -> None:
        """Raise `BackendError` for a response that is not a success, with the backend's reason."""
        if 200 <= response.status_code < 300:
            return
        detail = ""
        if response.media_type == "application/json":
            with contextlib.suppress(ValueError, http11.HTTPError):
                body = await response.aread(limit=_ERROR_BODY_LIMIT)
                decoded = jsonrpc.decode(body)
                error = decoded.get("error") if isinstance(decoded, dict) else None
                message = error.get("message") if isinstance(error, dict) else None
                if isinstance(message, str):
                    detail = f": {message}"
        raise BackendError(
            f"service '{self.service}' answered HTTP {response.status_code} "
            f"{response.reason_phrase}{self.without_secrets(detail)}".rstrip()
        )

    def unreachable(self, exc: Exception) -> BackendError:
        reason = self.without_secrets(str(exc) or type(exc).__name__)
        return BackendError(f"service '{self.service}' is unreachable: {reason}")

    def without_secrets(self, text: str) -> str:
        """`text` with whatever the backend's URL holds that may be secret taken out."""
        return http11.without_url_secrets(text, self._url or "", (self._headers or {}).values())

    def decoded(self, event: ServerSentEvent) -> tuple[Message, MessageKind] | None:
        """The JSON-RPC message an event carries; `None` for other events and (logged) garbage."""
        if event.event != "message" or not event.data:
            return None
        return self.session.decode(event.data, "sent an event")

    async def _prepare(self) -> tuple[str, dict[str, str]]:
        """The backend's URL and configured headers, rendered for this principal."""
        if self._url is None or self._headers is None:
            server = self.session.server
            if server.url is None:
                raise BackendError(f"service '{self.service}' has no url to forward to")
            self._url = await self.session.render(server.url)
            self._headers = await self.session.render_all(server.headers)
            self._heads.clear()
        return self._url, self._headers

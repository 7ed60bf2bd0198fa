"""`ServiceEndpoints`: one service's front transports, at `/<service>/mcp`, `/sse` and `/message`."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.backends.base import UpstreamOpener
from mcp_front.protocol import jsonrpc
from mcp_front.transports import http
from mcp_front.transports.answer import Heartbeat
from mcp_front.transports.replication import SessionReplication
from mcp_front.transports.session import SessionRegistry
from mcp_front.transports.sse import SSETransport
from mcp_front.transports.streamable_http import StreamableHTTPTransport


class ServiceEndpoints:
    """Dispatches `/<service>/<endpoint>` to the transport that serves it.

    Both transports open sessions with `open_upstream` in `sessions`. `native_self_contained`
    says the backend is a streamable-HTTP server, which may take 2026-07-28 requests as
    they are; `message_path` is the full path SSE clients are told to post to.
    """

    def __init__(
        self,
        service: str,
        sessions: SessionRegistry,
        open_upstream: UpstreamOpener,
        origins: http.OriginPolicy,
        *,
        message_path: str,
        heartbeat: Heartbeat,
        native_self_contained: bool = False,
        replication: SessionReplication | None = None,
    ) -> None:
        self.service = service
        self.streamable_http = StreamableHTTPTransport(
            service,
            sessions,
            open_upstream,
            origins,
            heartbeat=heartbeat,
            ping_interval=heartbeat.interval,
            native_self_contained=native_self_contained,
            replication=replication,
        )
        self.sse = SSETransport(
            service,
            sessions,
            open_upstream,
            origins,
            message_path=message_path,
            ping_interval=heartbeat.interval,
            replication=replication,
        )
        self._endpoints: dict[str, ASGIApp] = {
            "/mcp": self.streamable_http,
            "/sse": self.sse.stream,
            "/message": self.sse.message,
        }

    async def aclose(self) -> None:
        """End what no session owns (the 2026-07-28 channels)."""
        await self.streamable_http.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        suffix = path[len(root) :] if root and path.startswith(root) else path
        endpoint = self._endpoints.get(suffix.rstrip("/") or "/")
        if endpoint is None:
            response: Response = http.rpc_error(
                404,
                jsonrpc.INVALID_REQUEST,
                f"Not found: service '{self.service}' has /mcp, /sse and /message",
            )
            await response(scope, receive, send)
            return
        await endpoint(scope, receive, send)

"""`CallerRateLimit`: how many requests each caller may send one service.

It sits behind the service's `ResourceGuard`, so it knows who is calling: a signed-in
user, or a static credential, by their principal's key; an anonymous caller by their
address. Every HTTP request to the service's endpoints counts (a message posted, a stream
opened or resumed, a session deleted). Past the limit the answer is 429 with `Retry-After`
and a JSON-RPC error, and nothing reaches the backend.

Counted per service: each backend is protected on its own, and a caller busy with one
service is not held back on the others.
"""

from __future__ import annotations

import math

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.auth.principal import Principal
from mcp_front.crypto import digest
from mcp_front.metrics import RATE_LIMITED
from mcp_front.protocol import jsonrpc
from mcp_front.rate_limit import RateLimit, RateLimiter, address_key
from mcp_front.transports import http
from mcp_front.transports.forwarding import FORWARDED_SCOPE_KEY

__all__ = ["CallerRateLimit"]


class CallerRateLimit:
    """ASGI middleware limiting each caller's requests to `service`."""

    def __init__(self, app: ASGIApp, *, service: str, limiter: RateLimiter, limit: RateLimit) -> None:
        self.app = app
        self.service = service
        self._limiter = limiter
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A request another replica forwarded was counted there.
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or scope.get(FORWARDED_SCOPE_KEY):
            await self.app(scope, receive, send)
            return
        wait = await self._limiter.acquire(self._key(scope), self._limit)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry = str(max(1, math.ceil(wait)))
        RATE_LIMITED.inc("mcpRequests")
        response = http.rpc_error(
            429,
            jsonrpc.INTERNAL_ERROR,
            f"Too many requests to service '{self.service}'; retry in {retry} seconds",
            headers={"Retry-After": retry, "Cache-Control": "no-store"},
        )
        await response(scope, receive, send)

    def _key(self, scope: Scope) -> str:
        principal = scope.get("user")
        if isinstance(principal, Principal) and principal.kind != "anonymous":
            # A digest: a shared store holds no user's id in clear.
            who = digest(principal.key).hex()
        else:
            client = scope.get("client")
            who = "address:" + address_key(client[0] if client else None)
        return f"mcp:{self.service}/{who}"

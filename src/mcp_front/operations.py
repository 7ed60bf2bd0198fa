"""What operators and load balancers ask the gateway: whether it is ready, its metrics.

- `/health`: the process answers (liveness).
- `/ready`: the store answers too (readiness). The answer is kept for a second, so a
  balancer (or anyone: it needs no credentials) probing it often costs the store one
  read a second at most.
- `/metrics`: the Prometheus text format, only when `proxy.metrics` is configured, and
  only for a scraper sending its token.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_front.metrics import CONTENT_TYPE, METRICS, REQUEST_SECONDS, REQUESTS, Registry
from mcp_front.storage import Store, StoreUnavailable

__all__ = ["MetricsEndpoint", "Readiness", "ServiceMetrics", "health"]

READY_CACHE_SECONDS = 1.0
READY_TIMEOUT = 3.0
"""Seconds the store has to answer the readiness probe."""
ENDPOINTS = frozenset({"mcp", "sse", "message"})

logger = logging.getLogger("mcp_front.operations")


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


class Readiness:
    """`/ready`: 200 while the store answers, 503 while it does not."""

    def __init__(self, store: Store | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._checked_at = -READY_CACHE_SECONDS
        self._ready = True
        self._checking = anyio.Lock()

    async def endpoint(self, request: Request) -> Response:
        """The route's handler (an instance itself would be taken for an ASGI app)."""
        ready = await self.ready()
        if ready:
            return JSONResponse({"status": "ready"}, headers={"Cache-Control": "no-store"})
        return JSONResponse(
            {"status": "unavailable", "store": "unreachable"},
            status_code=503,
            headers={"Cache-Control": "no-store", "Retry-After": "5"},
        )

    async def ready(self) -> bool:
        if self._store is None:
            return True
        async with self._checking:
            if self._clock() - self._checked_at >= READY_CACHE_SECONDS:
                self._ready = await self._probe(self._store)
                self._checked_at = self._clock()
            return self._ready

    @staticmethod
    async def _probe(store: Store) -> bool:
        with anyio.move_on_after(READY_TIMEOUT):
            try:
                await store.get("health", "ready")
            except StoreUnavailable:
                return False
            except Exception as error:  # a store failing otherwise (a full disk) is not ready either
                logger.warning("readiness: the store failed: %s", type(error).__name__)
                return False
            return True
        return False


class MetricsEndpoint:
    """`/metrics` for a scraper that sends `token` as a bearer token."""

    def __init__(self, token: str, registry: Registry = METRICS) -> None:
        self._expected = hashlib.sha256(f"Bearer {token}".encode()).digest()
        self._registry = registry

    async def endpoint(self, request: Request) -> Response:
        """The route's handler (an instance itself would be taken for an ASGI app)."""
        sent = request.headers.get("authorization", "").encode("utf-8", "surrogateescape")
        # Digests of equal length: compare_digest returns at once on a length mismatch, which
        # would tell a guesser the token's length.
        if not secrets.compare_digest(hashlib.sha256(sent).digest(), self._expected):
            return JSONResponse(
                {"error": "unauthorized", "error_description": "/metrics needs the configured bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"},
            )
        body = self._registry.exposition()
        return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


class ServiceMetrics:
    """ASGI middleware counting a service's requests by endpoint and status, and timing
    them to their first byte (a stream's answer lasts as long as the stream)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = _endpoint(scope)
        started = time.perf_counter()
        status = "500"

        async def send_and_count(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
                REQUEST_SECONDS.observe(time.perf_counter() - started, self.service, endpoint)
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            REQUESTS.inc(self.service, endpoint, status)


def _endpoint(scope: Scope) -> str:
    path: str = scope["path"]
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return last if last in ENDPOINTS else "other"

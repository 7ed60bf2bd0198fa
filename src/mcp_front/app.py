"""`create_app()`: the gateway as an ASGI application, standalone or inside a host app."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mcp_front.auth.server import AuthorizationServer
from mcp_front.backends.base import BackendFactory
from mcp_front.backends.templating import UserTokenSource
from mcp_front.config import GatewayConfig, ProxyConfig, load_config
from mcp_front.gateway import Gateway
from mcp_front.idp.base import IdentityProvider
from mcp_front.logs import AccessLogMiddleware
from mcp_front.operations import MetricsEndpoint, Readiness, ServiceMetrics, health
from mcp_front.protocol import jsonrpc
from mcp_front.storage import Store, StoreUnavailable
from mcp_front.text import escaped
from mcp_front.transports import http

logger = logging.getLogger("mcp_front.app")

CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Last-Event-ID",
    "Mcp-Session-Id",
    "MCP-Protocol-Version",
    "Mcp-Method",
    "Mcp-Name",
)


def create_app(
    config: GatewayConfig | ProxyConfig | str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    backends: Iterable[BackendFactory] = (),
    authorization_server: AuthorizationServer | None = None,
    user_tokens: UserTokenSource | None = None,
    ping_interval: float = http.PING_INTERVAL,
    store: Store | None = None,
    identity_provider: IdentityProvider | None = None,
) -> Starlette:
    """Build the gateway's ASGI app from a config object, a config file path, or a dict;
    or assemble it from parts: `backends` serving their own services, an
    `authorization_server`, and a `ProxyConfig` (or nothing, for its defaults).

    `store` and `identity_provider`, when given, replace those `proxy.auth` describes.
    The app's lifespan starts and stops the gateway. A host app that mounts it must run
    that lifespan itself: `FastAPI(lifespan=lambda _: gateway_app.router.lifespan_context(gateway_app))`.
    """
    if not isinstance(config, GatewayConfig | ProxyConfig | None):
        config = load_config(config)
    gateway = Gateway(
        config,
        backends=backends,
        authorization_server=authorization_server,
        user_tokens=user_tokens,
        ping_interval=ping_interval,
        store=store,
        identity_provider=identity_provider,
    )
    config = gateway.config

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with gateway.run():
            yield

    auth = gateway.authorization_server
    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET", "HEAD"]),
        Route("/ready", Readiness(auth.store if auth else None).endpoint, methods=["GET", "HEAD"]),
        *(
            Mount(f"/{service.name}", app=ServiceMetrics(service.app, service.name))
            for service in gateway.services.values()
        ),
    ]
    if config.proxy.metrics is not None:
        endpoint = MetricsEndpoint(config.proxy.metrics.token.get_secret_value())
        routes.append(Route("/metrics", endpoint.endpoint, methods=["GET"]))
    if gateway.authorization_server is not None:
        routes += gateway.authorization_server.routes(mounted_at=config.proxy.base_path)
    if gateway.account is not None:
        routes += gateway.account.routes()
    forwarded = (
        [Middleware(ProxyHeadersMiddleware, trusted_hosts=list(config.proxy.trusted_proxies))]
        if config.proxy.trusted_proxies
        else []
    )
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            # Before anything reads the client's address: only configured proxies are believed.
            *forwarded,
            Middleware(AccessLogMiddleware),
            # Browser clients' preflights are answered before any authentication.
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.proxy.cors_allowed_origins),
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=list(CORS_REQUEST_HEADERS),
                expose_headers=["WWW-Authenticate", "Mcp-Session-Id"],
                max_age=600,
            ),
            Middleware(BasePathMiddleware, base_path=config.proxy.base_path),
        ],
        exception_handlers={
            404: _not_found,
            StoreUnavailable: _store_unavailable,
            Exception: _internal_error,
        },
    )
    # A redirect that adds a slash is built from the request's Host header: behind a shared
    # cache that would let anyone plant a redirect to their host. Paths are exact here.
    app.router.redirect_slashes = False
    app.state.gateway = gateway
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    return http.rpc_error(404, jsonrpc.INVALID_REQUEST, f"Not found: {request.url.path}")


STORE_RETRY_AFTER = 5
"""Seconds a client is told to wait when the store is unreachable."""


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """What needs the store while it is down: a 503 the client can retry, nothing lost."""
    logger.warning("%s %s refused: %s", request.method, escaped(request.url.path), exc)
    message = "The gateway's store is unreachable; try again in a few seconds"
    headers = {"Retry-After": str(STORE_RETRY_AFTER), "Cache-Control": "no-store"}
    if "mcp_front.service" in request.scope:
        response = http.rpc_error(503, jsonrpc.INTERNAL_ERROR, message)
        response.headers.update(headers)
        return response
    return JSONResponse(
        {"error": "temporarily_unavailable", "error_description": message}, status_code=503, headers=headers
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error serving %s %s", request.method, escaped(request.url.path), exc_info=exc)
    return http.rpc_error(500, jsonrpc.INTERNAL_ERROR, "Internal error in the gateway; it has been logged")


class BasePathMiddleware:
    """Serves the app under the path of `proxy.baseURL`.

    A request for `<base>/x` is routed as `/x`. When a host app already mounted the
    gateway at `<base>` (its `root_path` ends with it), requests pass as they are.
    """

    def __init__(self, app: ASGIApp, base_path: str) -> None:
        self.app = app
        self.base_path = base_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        base = self.base_path
        if not base or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        root: str = scope.get("root_path", "")
        if root.endswith(base) or scope["path"].startswith("/.well-known/"):
            # Metadata documents live at the host's root (RFC 8414, RFC 9728).
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        route_path = path[len(root) :] if root and path.startswith(root) else path
        if route_path == base or route_path.startswith(base + "/"):
            scope["root_path"] = root + base
            await self.app(scope, receive, send)
            return
        response = http.rpc_error(
            404, jsonrpc.INVALID_REQUEST, f"Not found: this gateway lives under {base}/"
        )
        await response(scope, receive, send)

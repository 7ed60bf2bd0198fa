"""The gateway inside a Starlette application of your own.

The host app keeps its own routes and mounts the gateway where the configuration's
`proxy.baseURL` says: at "/" for `http://localhost:8080`, at "/mcp-gateway" for
`https://example.com/mcp-gateway`. A mounted Starlette app does not run its own lifespan,
so the host's lifespan enters the gateway's: that starts the gateway, and on shutdown ends
every session and stops every stdio process it started.

Run it from the repository root (the quickstart's demo server path is relative to it):

    python examples/starlette_app.py

and connect an MCP client to http://localhost:8080/demo/mcp with the header
`Authorization: Bearer dev-token-123`. `MCP_FRONT_CONFIG=path/to/config.json` serves
another configuration, `PORT=…` on another port.

It serves with uvicorn through `mcp_front.serving.serve`, as `mcp-front serve` serves: an
undumpable process, a deadline for incomplete requests, `X-Forwarded-For` not believed,
and on a signal at most 5 seconds of waiting for open event streams before the lifespan's
shutdown stops the gateway. Under `uvicorn starlette_app:app` instead, give it
`--no-proxy-headers --timeout-graceful-shutdown 5` for the last two.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from mcp_front import GatewayConfig, create_app, load_config
from mcp_front.serving import serve

DEFAULT_CONFIG = Path(__file__).resolve().with_name("quickstart.json")


def build_app(config: GatewayConfig) -> Starlette:
    """A host app with its own `/hello` route and the gateway mounted at its base path."""
    gateway_app = create_app(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Anything the host starts goes here too; the gateway runs while the host runs.
        async with gateway_app.router.lifespan_context(gateway_app):
            yield

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"app": "host", "gateway": config.proxy.base_path or "/"})

    return Starlette(
        routes=[
            Route("/hello", hello),
            # Host routes come first: the mount takes everything else under its path.
            Mount(config.proxy.base_path or "/", app=gateway_app),
        ],
        lifespan=lifespan,
    )


app = build_app(load_config(os.environ.get("MCP_FRONT_CONFIG", DEFAULT_CONFIG)))


if __name__ == "__main__":
    serve(app, port=int(os.environ.get("PORT", "8080")))

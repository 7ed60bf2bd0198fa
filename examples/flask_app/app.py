"""A Flask application and the gateway served together by one ASGI server.

Flask speaks WSGI and the gateway ASGI, so an ASGI root holds both: Flask, through the
`a2wsgi` bridge, under `/app`, and the gateway everywhere else, where the configuration's
`proxy.baseURL` puts it. Flask has no lifespan; the root's lifespan runs the gateway's,
so the gateway starts with the server and, when it stops, ends every session and stops
every stdio process it started.

See README.md next to this file for how to run and test it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from a2wsgi import WSGIMiddleware
from flask import Flask, jsonify
from starlette.applications import Starlette
from starlette.routing import Mount

from mcp_front import create_app, load_config
from mcp_front.serving import serve

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "quickstart.json"

config = load_config(os.environ.get("MCP_FRONT_CONFIG", DEFAULT_CONFIG))
gateway_app = create_app(config)

flask_app = Flask(__name__)


@flask_app.get("/hello")
def hello() -> object:
    """A route of the Flask application, next to the gateway."""
    return jsonify(app="flask", gateway=config.proxy.base_path or "/")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # Flask has nothing to start; the gateway runs while the server runs.
    async with gateway_app.router.lifespan_context(gateway_app):
        yield


app = Starlette(
    routes=[
        # Flask first: the gateway's mount takes everything else.
        Mount("/app", app=WSGIMiddleware(flask_app)),
        Mount(config.proxy.base_path or "/", app=gateway_app),
    ],
    lifespan=lifespan,
)


if __name__ == "__main__":
    # As `mcp-front serve` serves: an undumpable process, a deadline for incomplete
    # requests, and X-Forwarded-For not believed (uvicorn believes it from loopback).
    serve(app, port=int(os.environ.get("PORT", "8080")))

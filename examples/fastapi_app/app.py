"""The gateway inside a FastAPI application.

FastAPI keeps its own routes (and its /docs) and mounts the gateway where the
configuration's `proxy.baseURL` says: at "/" for `http://localhost:8080`, at
"/mcp-gateway" for `https://example.com/mcp-gateway`. FastAPI does not run a mounted
app's lifespan, so `lifespan=` enters the gateway's: the gateway starts with the host and,
when the host stops, ends every session and stops every stdio process it started.

See README.md next to this file for how to run it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from mcp_front import create_app, load_config

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "quickstart.json"

config = load_config(os.environ.get("MCP_FRONT_CONFIG", DEFAULT_CONFIG))
gateway_app = create_app(config)
mount_path = config.proxy.base_path or "/"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Anything else the host starts goes here too; the gateway runs while the host runs.
    async with gateway_app.router.lifespan_context(gateway_app):
        yield


app = FastAPI(title="Host application", lifespan=lifespan)


@app.get("/hello")
async def hello() -> dict[str, str]:
    """A route of the host application, next to the gateway."""
    return {"app": "host", "gateway": mount_path}


# Mounted last: the host's routes above take precedence over the gateway's.
app.mount(mount_path, gateway_app)

"""The gateway inside a FastAPI application that signs its users in itself.

FastAPI keeps its own routes (and its /docs), serves its own login page, and mounts the
gateway where the configuration's `proxy.baseURL` says: at "/" for `http://localhost:8080`,
at "/mcp-gateway" for `https://example.com/mcp-gateway`. The gateway has no identity
provider of its own (`config.json` has no `proxy.auth.idp`): `HostSignIn` sends users to
the host's `/login`, checks their password against `users.json`, and tells the gateway who
they are. FastAPI does not run a mounted app's lifespan, so `lifespan=` enters the
gateway's: the gateway starts with the host and, when the host stops, ends every session
and stops every stdio process it started.

See README.md next to this file for how to run it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urljoin

from fastapi import FastAPI
from host_sign_in import HostSignIn
from users import UserDirectory

from mcp_front import GatewayConfig, create_app, load_config
from mcp_front.serving import serve

HERE = Path(__file__).resolve().parent


def hidden_from_servers(config: GatewayConfig, *paths: Path) -> GatewayConfig:
    """`config` with `paths` out of sight of every stdio server's sandbox, as the gateway's
    own files are: a server running someone's code must not read the host's secrets."""
    hidden = [str(path.resolve()) for path in paths]
    servers = {
        name: server.model_copy(
            update={
                "sandbox": server.sandbox.model_copy(
                    update={"hidden_paths": [*server.sandbox.hidden_paths, *hidden]}
                )
            }
        )
        for name, server in config.mcp_servers.items()
    }
    return config.model_copy(update={"mcp_servers": servers})


users_file = Path(os.environ.get("USERS_FILE", "users.json"))
if not users_file.exists():
    sys.exit(f"{users_file} does not exist: add a user with `python users.py add you@example.com`")
# The accounts file holds every password hash.
config = hidden_from_servers(
    load_config(os.environ.get("MCP_FRONT_CONFIG", HERE / "config.json")), users_file
)
sign_in = HostSignIn(
    UserDirectory.load(users_file),
    # The host's own page, at its origin's root even when the gateway lives under a sub-path.
    login_url=urljoin(str(config.proxy.base_url), "/login"),
)
gateway_app = create_app(config, identity_provider=sign_in)
mount_path = config.proxy.base_path or "/"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Anything else the host starts goes here too; the gateway runs while the host runs.
    async with gateway_app.router.lifespan_context(gateway_app):
        yield


# No /docs: FastAPI's documentation page loads its script from a CDN, on the origin of
# the gateway's own pages.
app = FastAPI(title="Host application", lifespan=lifespan, docs_url=None, redoc_url=None)
app.include_router(sign_in.router)


@app.get("/hello")
async def hello() -> dict[str, str]:
    """A route of the host application, next to the gateway."""
    return {"app": "host", "gateway": mount_path}


# Mounted last: the host's routes above take precedence over the gateway's.
app.mount(mount_path, gateway_app)


if __name__ == "__main__":
    # As `mcp-front serve` serves: an undumpable process, a deadline for incomplete
    # requests, and X-Forwarded-For not believed (uvicorn believes it from loopback).
    serve(app, port=int(os.environ.get("PORT", "8080")))

"""A gateway assembled in Python from its parts, with no configuration file.

Every part is an object of the library, made here and handed to the next:

- a store (SQLite in a file: grants, clients and the sign-in state survive restarts);
- an identity provider (any OpenID Connect provider; `GoogleProvider`, `AzureProvider`,
  `GitHubProvider` or a class of your own fit the same place);
- a token issuer (the access tokens' signing key) and an audience validator (each
  service's RFC 8707 resource identifier, so that a token opens one service only);
- the authorization server made of those;
- one backend factory per kind of MCP server: per-user stdio processes, a
  streamable-HTTP server, a legacy SSE server, tools run by the gateway itself, and an
  aggregate of two of them behind one endpoint.

`create_app(proxy, backends=..., authorization_server=...)` puts them together: each
backend serves the services it was made with, and the whole is checked as a
configuration file would be. Settings come from the environment (see README.md next to
this file, or docs/library.md):

    MCP_FRONT_BASE_URL   where clients reach the gateway (http://127.0.0.1:8080)
    OIDC_DISCOVERY_URL   the identity provider's .well-known/openid-configuration
    OIDC_CLIENT_ID, OIDC_CLIENT_SECRET
    ALLOWED_DOMAIN       whose users may sign in (example.com)
    ENCRYPTION_KEY       32 bytes that encrypt secrets at rest
    SIGNING_KEY_FILE     a PEM private key for access tokens (one is made if missing)
    SEARCH_MCP_URL       a streamable-HTTP MCP server (http://127.0.0.1:9000/mcp)
    LEGACY_SSE_URL       a legacy SSE MCP server (http://127.0.0.1:9001/sse)
    MCP_FRONT_DATA       the folder of the store and the key (./gateway-data)

Run it with `python examples/from_parts.py` from the repository root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from starlette.applications import Starlette

from mcp_front import (
    AggregateRegistry,
    AudienceValidator,
    AuthConfig,
    AuthorizationServer,
    BackendFactory,
    InlineToolRegistry,
    OIDCProvider,
    ProxyConfig,
    ServerConfig,
    SigningKey,
    SigningKeys,
    SQLiteStore,
    SSEForwarder,
    StdioSessionPool,
    StreamableHTTPForwarder,
    TokenIssuer,
    create_app,
)
from mcp_front.serving import serve

HERE = Path(__file__).resolve().parent


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"set {name} in the environment (see the top of {Path(__file__).name})")
    return value


def signing_key(path: Path) -> SigningKey:
    """The access tokens' key, kept in a file so that tokens outlive a restart."""
    if path.exists():
        return SigningKey.from_pem(path.read_text())
    key = SigningKey.generate()
    path.touch(mode=0o600)
    path.write_text(key.to_pem())
    return key


def backends(data: Path) -> list[BackendFactory]:
    """One factory per kind of backend, each with the services it serves."""
    notes = StdioSessionPool(
        {
            "notes": ServerConfig(
                transport_type="stdio",
                command=sys.executable,
                args=[str(HERE / "demo_server.py")],
                # Each user's process learns who it serves, and nothing of the gateway's.
                env={"DEMO_USER": "{{principal.email}}"},
                # Sandboxed (bubblewrap), with the signing key out of sight; the store's
                # database is hidden by the gateway itself.
                sandbox={"hiddenPaths": [str(data)]},
            )
        }
    )
    search = StreamableHTTPForwarder(
        {
            "search": ServerConfig(
                transport_type="streamable-http", url=setting("SEARCH_MCP_URL", "http://127.0.0.1:9000/mcp")
            )
        }
    )
    legacy = SSEForwarder(
        {
            "legacy": ServerConfig(
                transport_type="sse", url=setting("LEGACY_SSE_URL", "http://127.0.0.1:9001/sse")
            )
        }
    )
    clock = InlineToolRegistry(
        {
            "clock": ServerConfig(
                transport_type="inline",
                inline={
                    "tools": [
                        {
                            "name": "utc_date",
                            "description": "Today's date in UTC",
                            "inputSchema": {"type": "object", "properties": {}},
                            "command": "date",
                            "args": ["-u", "+%Y-%m-%d"],
                        }
                    ]
                },
            )
        }
    )
    # The aggregate opens its members as their own services would: same rules, same users.
    everything = AggregateRegistry({"everything": ServerConfig(type="aggregate", servers=["notes", "clock"])})
    return [notes, search, legacy, clock, everything]


def build_app() -> Starlette:
    base_url = setting("MCP_FRONT_BASE_URL", "http://127.0.0.1:8080")
    data = Path(setting("MCP_FRONT_DATA", "gateway-data"))
    data.mkdir(mode=0o700, exist_ok=True)
    parts = backends(data)
    services = [name for factory in parts for name in factory.services]

    auth = AuthConfig(
        kind="oauth",
        issuer=base_url,
        allowed_domains=[setting("ALLOWED_DOMAIN", "example.com")],
        encryption_key=setting("ENCRYPTION_KEY"),
    )
    authorization_server = AuthorizationServer(
        auth,
        store=SQLiteStore(data / "gateway.db"),
        idp=OIDCProvider(
            setting("OIDC_CLIENT_ID"),
            setting("OIDC_CLIENT_SECRET"),
            discovery_url=setting("OIDC_DISCOVERY_URL"),
        ),
        audiences=AudienceValidator(base_url, services),
        token_issuer=TokenIssuer(SigningKeys(signing_key(data / "signing-key.pem")), base_url),
        owns_store=True,
        owns_idp=True,
    )
    return create_app(
        ProxyConfig(base_url=base_url, name="assembled gateway"),
        backends=parts,
        authorization_server=authorization_server,
    )


if __name__ == "__main__":
    # As `mcp-front serve` serves: an undumpable process, a deadline for incomplete
    # requests, and X-Forwarded-For not believed (uvicorn believes it from loopback).
    serve(build_app(), port=int(os.environ.get("PORT", "8080")))

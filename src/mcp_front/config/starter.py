"""The configuration `mcp-front init` writes: small, working, and safe to run locally."""

from __future__ import annotations

from typing import Any


def starter_config() -> dict[str, Any]:
    """A configuration to start from: one stdio service, reached with a bearer token.

    The service, "filesystem", runs `npx -y @modelcontextprotocol/server-filesystem /tmp`
    for each caller, at `http://localhost:8080/filesystem/mcp` (and `/filesystem/sse`).
    Callers present the token held in the `MCP_FRONT_TOKEN` environment variable; the file
    only names the variable, so it can be committed. Sign-in for people (an identity
    provider under `proxy.auth`) comes later, see docs/configuration.md.

    A new dictionary is returned on every call.
    """
    return {
        "version": "v0.0.1-DEV_EDITION_EXPECT_CHANGES",
        "proxy": {
            "baseURL": "http://localhost:8080",
            "addr": ":8080",
        },
        "mcpServers": {
            "filesystem": {
                "transportType": "stdio",
                "command": "npx",
                # The folder the example server exposes, not one the gateway writes to.
                "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],  # noqa: S108
                "serviceAuths": [
                    {
                        "type": "bearer",
                        "tokens": [{"$env": "MCP_FRONT_TOKEN"}],
                        "user": "local-dev",
                    }
                ],
            }
        },
    }

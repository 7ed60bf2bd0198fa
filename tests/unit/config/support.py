"""Helpers for the configuration tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from mcp_front.config import ConfigError, load_config

SEED_CONFIG: dict[str, Any] = {
    "version": "v0.0.1-DEV_EDITION_EXPECT_CHANGES",
    "proxy": {"baseURL": "http://localhost:8080", "addr": ":8080"},
    "mcpServers": {
        "filesystem": {
            "transportType": "stdio",
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
            "serviceAuths": [{"type": "bearer", "tokens": ["dev-token-123"]}],
        }
    },
}


def stdio_server(**keys: Any) -> dict[str, Any]:
    """A valid stdio server entry, with `keys` added or replaced."""
    return {"transportType": "stdio", "command": "my-mcp"} | keys


def with_servers(**servers: Any) -> dict[str, Any]:
    """A document holding just these `mcpServers`."""
    return {"mcpServers": servers}


def problems(document: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """Every issue `load_config` reports for `document`, as the lines of its report."""
    with pytest.raises(ConfigError) as raised:
        load_config(document, environ=environ or {})
    return [str(issue) for issue in raised.value.issues]

"""HTTP header names of the streamable-HTTP transport, lower-cased as ASGI and the
backend client see them; the routing headers of 2026-07-28 come from the mcp SDK."""

from __future__ import annotations

from typing import Final

from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PARAM_HEADER_PREFIX,
    MCP_PROTOCOL_VERSION_HEADER,
)

__all__ = [
    "LAST_EVENT_ID",
    "METHOD",
    "NAME",
    "PARAM_PREFIX",
    "PROTOCOL_VERSION",
    "SESSION_ID",
]

SESSION_ID: Final = "mcp-session-id"
PROTOCOL_VERSION: Final = MCP_PROTOCOL_VERSION_HEADER.lower()
LAST_EVENT_ID: Final = "last-event-id"
METHOD: Final = MCP_METHOD_HEADER.lower()
NAME: Final = MCP_NAME_HEADER.lower()
PARAM_PREFIX: Final = MCP_PARAM_HEADER_PREFIX.lower()

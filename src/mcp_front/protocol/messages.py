"""The MCP messages the gateway sends on its own behalf, and the answers it reads back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from mcp_front.protocol.jsonrpc import Message, RequestId

__all__ = [
    "CANCELLED",
    "INITIALIZED",
    "cancelled",
    "error_detail",
    "initialize",
    "initialized",
]

INITIALIZED: Final = "notifications/initialized"
CANCELLED: Final = "notifications/cancelled"


def initialize(params: Mapping[str, Any], request_id: RequestId = 0) -> Message:
    """An `initialize` request with the given params."""
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": dict(params)}


def initialized() -> Message:
    """The notification that ends the handshake."""
    return {"jsonrpc": "2.0", "method": INITIALIZED}


def cancelled(request_id: RequestId, reason: str) -> Message:
    """Tells a server to stop working on a request nobody waits for any more."""
    return {"jsonrpc": "2.0", "method": CANCELLED, "params": {"requestId": request_id, "reason": reason}}


def error_detail(response: Message, default: str = "no reason given") -> str:
    """The `error.message` of a failed response, or `default` when it gives none."""
    error = response.get("error")
    detail = error.get("message") if isinstance(error, dict) else None
    return detail if isinstance(detail, str) and detail else default

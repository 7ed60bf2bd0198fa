"""JSON-RPC 2.0 message shapes as the gateway routes them.

The gateway forwards messages it does not need to understand, so it works on
plain decoded JSON objects and only checks the envelope: what kind of message
it is, and its id. Payload validation is the backend's job.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, Final

from mcp_types.jsonrpc import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    REQUEST_TIMEOUT,
)

from mcp_front.errors import MCPFrontError

__all__ = [
    "CONNECTION_CLOSED",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "REQUEST_TIMEOUT",
    "SESSION_LIMIT_REACHED",
    "Message",
    "MessageKind",
    "RequestId",
    "classify",
    "decode",
    "encode",
    "error_response",
    "progress_token",
]

Message = dict[str, Any]
RequestId = str | int

SESSION_LIMIT_REACHED: Final = -32005
"""Implementation-defined server error: a per-caller or global limit refused a new session."""


class MessageKind(Enum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"


class InvalidMessage(MCPFrontError, ValueError):
    """A decoded JSON value that is not a single JSON-RPC 2.0 message."""


def decode(body: bytes | str) -> Any:
    """Parse JSON; `ValueError` covers syntax errors, oversized integers and deep nesting."""
    try:
        return json.loads(body)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def classify(value: Any) -> MessageKind:
    """Tell what a decoded value is, or raise `InvalidMessage` saying why it is none."""
    if isinstance(value, list):
        raise InvalidMessage("JSON-RPC batches are not supported; send one message per request")
    if not isinstance(value, dict):
        raise InvalidMessage("a JSON-RPC message must be a JSON object")
    if value.get("jsonrpc") != "2.0":
        raise InvalidMessage('"jsonrpc" must be "2.0"')
    has_id = "id" in value
    if has_id and not _is_valid_id(value["id"]):
        raise InvalidMessage('"id" must be a string or an integer')
    if "method" in value:
        if not isinstance(value["method"], str) or not value["method"]:
            raise InvalidMessage('"method" must be a non-empty string')
        params = value.get("params")
        if params is not None and not isinstance(params, dict):
            raise InvalidMessage('"params" must be an object')
        return MessageKind.REQUEST if has_id else MessageKind.NOTIFICATION
    if has_id and (("result" in value) != ("error" in value)):
        return MessageKind.RESPONSE
    raise InvalidMessage('a message needs "method", or "id" with exactly one of "result" and "error"')


def _is_valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def result_response(request_id: RequestId, result: dict[str, Any]) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(request_id: RequestId | None, code: int, message: str, data: Any = None) -> Message:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def progress_token(message: Message) -> str | int | None:
    """The `_meta.progressToken` a request carries, or a progress notification reports on."""
    params = message.get("params")
    if not isinstance(params, dict):
        return None
    if message.get("method") == "notifications/progress":
        token = params.get("progressToken")
    else:
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
    return token if _is_valid_id(token) else None

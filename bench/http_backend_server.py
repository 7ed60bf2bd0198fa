"""A fast, stateful streamable-HTTP MCP server with one cheap tool: the backend of `bench.http_backend`.

It answers MCP's streamable-HTTP messages itself, in plain ASGI on uvicorn (the same
stack as the gateway and the HTTP floor), so a proxy in front of it is measured rather
than the backend. Unlike the floor (`bench.floor_server`) it keeps sessions, as a
stateful server does:

* `initialize` opens a session and answers with its `Mcp-Session-Id`;
* every other POST must carry a known session id (400 without one, 404 for an unknown
  one); requests get a JSON answer, notifications and responses a 202;
* `tools/list` lists `echo`, `tools/call` of `echo` returns its `text`, `ping` answers
  `{}`, any other request is "method not found";
* GET (the server's own event stream) is 405: this server sends nothing unsolicited;
* DELETE ends the session.

Run by the harness as `python -m uvicorn bench.http_backend_server:app`.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.types import Receive, Scope, Send

from bench.floor_server import _respond

SERVER_INFO = {"name": "bench-http-backend", "version": "1.0"}
ECHO_TOOL = {
    "name": "echo",
    "description": "Return the text it is given.",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}
JSON_HEADERS = [(b"content-type", b"application/json")]

_sessions: set[str] = set()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    method = scope["method"]
    session_id = _header(scope, b"mcp-session-id")
    if method == "GET":
        await _respond(send, 405, b"", [(b"allow", b"POST, DELETE")])
        return
    if method == "DELETE":
        if session_id in _sessions:
            _sessions.discard(session_id)
            await _respond(send, 200, b"")
        else:
            await _respond(send, 404, b"")
        return
    if method != "POST":
        await _respond(send, 405, b"", [(b"allow", b"GET, POST, DELETE")])
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    request: dict[str, Any] = json.loads(body)
    name = request.get("method")
    headers = list(JSON_HEADERS)
    if name == "initialize":
        session_id = secrets.token_urlsafe(16)
        _sessions.add(session_id)
        headers.append((b"mcp-session-id", session_id.encode()))
    elif session_id is None:
        await _respond(send, 400, _error(request.get("id"), -32600, "missing Mcp-Session-Id"), headers)
        return
    elif session_id not in _sessions:
        await _respond(send, 404, _error(request.get("id"), -32001, "session not found"), headers)
        return
    if "id" not in request or name is None:
        await _respond(send, 202, b"")
        return
    await _respond(send, 200, _answer(request), headers)


def _answer(request: dict[str, Any]) -> bytes:
    name = request["method"]
    params = request.get("params") or {}
    result: dict[str, Any]
    if name == "tools/call" and params.get("name") == "echo":
        text = params["arguments"]["text"]
        result = {"content": [{"type": "text", "text": text}], "isError": False}
    elif name == "initialize":
        result = {
            "protocolVersion": params["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": SERVER_INFO,
        }
    elif name == "tools/list":
        result = {"tools": [ECHO_TOOL]}
    elif name == "ping":
        result = {}
    else:
        return _error(request["id"], -32601, f"method not found: {name}")
    return json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()


def _error(request_id: object, code: int, message: str) -> bytes:
    error = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return json.dumps(error).encode()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None

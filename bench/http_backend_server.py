"""A fast, stateful streamable-HTTP MCP server with one cheap tool: the backend of `bench.http_backend`.

It answers MCP's streamable-HTTP messages itself, in plain ASGI on uvicorn (the same
stack as the gateway and the HTTP floor), so a proxy in front of it is measured rather
than the backend. Unlike the floor (`bench.floor_server`) it keeps sessions, as a
stateful server does:

* `initialize` opens a session and answers with its `Mcp-Session-Id`;
* every other POST must carry a known session id (400 without one, 404 for an unknown
  one); requests get a JSON answer, notifications and responses a 202;
* `tools/list` lists `echo` (and, with `--tools N`, N-1 more of its kind), `tools/call`
  of `echo` returns its `text`, `ping` answers `{}`, any other request is "method not
  found";
* GET (the server's own event stream) is 405: this server sends nothing unsolicited;
* DELETE ends the session.

Run by the harness as `python -m uvicorn bench.http_backend_server:app`, or, to list more
tools or answer `tools/list` more slowly (`bench.aggregate`'s members), as

    python -m bench.http_backend_server --port P [--tools N] [--list-delay-ms D]

which serves the same app under uvicorn's defaults (uvloop and httptools when installed).
"""

from __future__ import annotations

import argparse
import asyncio
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
_tools: list[dict[str, Any]] = [ECHO_TOOL]
_list_delay = 0.0
"""Seconds `tools/list` waits before it answers (0: none)."""


def configure(tools: int = 1, list_delay_ms: float = 0.0) -> None:
    """List `tools` tools (`echo` first) and wait `list_delay_ms` before answering `tools/list`."""
    global _tools, _list_delay
    if tools < 1:
        raise ValueError("at least one tool: echo")
    _tools = [ECHO_TOOL, *(_extra_tool(n) for n in range(2, tools + 1))]
    _list_delay = max(0.0, list_delay_ms) / 1000


def _extra_tool(n: int) -> dict[str, Any]:
    """A tool of a realistic size (name, a sentence, two typed arguments); not callable."""
    return {
        "name": f"tool_{n:03d}",
        "description": f"Benchmark tool number {n}: looks up a record by its key and returns it.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "key": {"type": "string", "description": "The record's key."},
                "limit": {"type": "integer", "description": "At most this many fields."},
            },
            "required": ["key"],
        },
    }


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
    if name == "tools/list" and _list_delay:
        await asyncio.sleep(_list_delay)
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
        result = {"tools": _tools}
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


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m bench.http_backend_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tools", type=int, default=1, help="tools listed, echo first (default 1)")
    parser.add_argument(
        "--list-delay-ms", type=float, default=0.0, help="wait this long before answering tools/list"
    )
    args = parser.parse_args(argv)
    configure(args.tools, args.list_delay_ms)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()

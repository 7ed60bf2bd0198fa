"""A reference HTTP endpoint with no backend: the floor under every HTTP target.

It answers MCP's streamable-HTTP messages itself, at once, as the demo server would
answer `echo`, on the same server stack as the gateway (uvicorn with h11 on asyncio).
Its round trip is what HTTP alone costs on this machine with the benchmark's client:
the part of a bridge's latency that no bridge can remove.

Run by the harness as `python -m uvicorn bench.floor_server:app`.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.types import Receive, Scope, Send

SERVER_INFO = {"name": "bench-floor", "version": "1.0"}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "DELETE":
        await _respond(send, 200, b"")
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    request: dict[str, Any] = json.loads(body)
    if "id" not in request:
        await _respond(send, 202, b"")
        return
    headers: list[tuple[bytes, bytes]] = []
    if request.get("method") == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": request["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": SERVER_INFO,
        }
        headers.append((b"mcp-session-id", secrets.token_urlsafe(16).encode()))
    else:
        text = request["params"]["arguments"]["text"]
        result = {"content": [{"type": "text", "text": text}], "isError": False}
    payload = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()
    await _respond(send, 200, payload, [(b"content-type", b"application/json"), *headers])


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = [*(headers or []), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})

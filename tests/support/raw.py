"""Streamable HTTP spoken by hand, for tests that need the wire itself."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx2

ACCEPT = "application/json, text/event-stream"


def events(body: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE body (or the one message of a JSON body)."""
    stripped = body.strip()
    if stripped.startswith("{"):
        return [json.loads(stripped)]
    found = []
    for block in stripped.split("\n\n"):
        data = [line[5:].strip() for line in block.splitlines() if line.startswith("data:")]
        if data:
            found.append(json.loads("\n".join(data)))
    return found


@dataclass
class RawSession:
    http: httpx2.AsyncClient
    url: str
    session_id: str
    next_id: int = field(default=2)

    @classmethod
    async def open(cls, http: httpx2.AsyncClient, url: str) -> RawSession:
        response = await http.post(url, json=initialize_message(), headers={"Accept": ACCEPT})
        response.raise_for_status()
        session_id = response.headers["mcp-session-id"]
        await http.post(
            url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers={"Accept": ACCEPT, "Mcp-Session-Id": session_id},
        )
        return cls(http, url, session_id)

    async def post(self, message: dict[str, Any], **headers: str) -> httpx2.Response:
        return await self.http.post(
            self.url, json=message, headers={"Accept": ACCEPT, "Mcp-Session-Id": self.session_id, **headers}
        )

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.next_id += 1
        response = await self.post(message)
        response.raise_for_status()
        return events(response.text)[-1]

    async def call_tool_text(self, name: str, arguments: dict[str, Any]) -> str:
        answer = await self.request("tools/call", {"name": name, "arguments": arguments})
        return str(answer["result"]["content"][0]["text"])


def initialize_message(request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "1"},
        },
    }


def modern_request(
    request_id: int, method: str, params: dict[str, object] | None = None
) -> dict[str, object]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
    }
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**(params or {}), "_meta": meta}}


def modern_headers(method: str, name: str | None = None) -> dict[str, str]:
    headers = {"Accept": ACCEPT, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    return headers

"""`ToolSchemas`: what the listings say about each tool's arguments, and reading them page by page."""

from __future__ import annotations

from typing import Any

from mcp_front.protocol.jsonrpc import Message
from mcp_front.protocol.tool_schemas import ToolSchemas, list_tools

ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
SCHEMA = {
    "type": "object",
    "properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "n": {"type": "integer"}},
}


def modern(method: str, request_id: int | str = 1, **params: Any) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": ENVELOPE}}


def test_a_complete_listing_replaces_what_was_known_and_a_page_adds() -> None:
    tools = ToolSchemas()
    first = {"result": {"tools": [{"name": "a", "inputSchema": SCHEMA}]}}
    tools.absorb(modern("tools/list"), first)
    page = {"result": {"tools": [{"name": "b", "inputSchema": {}}]}}
    tools.absorb(modern("tools/list", cursor="2"), page)
    assert tools.knows("a")
    assert tools.knows("b")
    assert tools.header_map("a") == {("region",): "Region"}
    tools.absorb(modern("tools/list"), page)
    assert not tools.knows("a")
    invalid = {"type": "object", "properties": {"n": {"type": "number", "x-mcp-header": "N"}}}
    tools.absorb(modern("tools/list"), {"result": {"tools": [{"name": "c", "inputSchema": invalid}]}})
    assert tools.knows("c")
    assert tools.header_map("c") == {}


async def test_list_tools_follows_cursors_and_stops_at_a_cycle() -> None:
    asked: list[Message] = []

    async def exchange(message: Message) -> Message:
        asked.append(message)
        cursor = message["params"].get("cursor")
        next_cursor = {None: "p2", "p2": "p3", "p3": "p2"}[cursor]
        name = cursor or "p1"
        return {"id": message["id"], "result": {"tools": [{"name": name}], "nextCursor": next_cursor}}

    tools = ToolSchemas()
    await list_tools(exchange, ENVELOPE, tools)
    assert [m["params"].get("cursor") for m in asked] == [None, "p2", "p3"]
    assert all(tools.knows(name) for name in ("p1", "p2", "p3"))

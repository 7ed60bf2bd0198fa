"""What `tools/list` says about each tool's arguments: its `inputSchema`, and which
arguments a 2026-07-28 request mirrors into `Mcp-Param-*` headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from mcp.shared.inbound import find_invalid_x_mcp_header, x_mcp_header_map

from mcp_front.protocol.jsonrpc import Message

__all__ = ["LIST_PAGE_CAP", "HeaderMap", "ToolSchemas", "list_tools"]

LIST_PAGE_CAP: Final = 20
"""Pages of `tools/list` read to find one tool's schema; a backend with more is not searched further."""

HeaderMap = dict[tuple[str, ...], str]
"""Argument paths to the `Mcp-Param-*` header each is mirrored into."""


class ToolSchemas:
    """The `inputSchema` of each tool the listings of one channel showed.

    A complete listing (no cursor asked, none returned) replaces what was known, so a
    tool the backend dropped is forgotten; a page only adds.
    """

    def __init__(self) -> None:
        self._schemas: dict[str, Any] = {}
        self._header_maps: dict[str, HeaderMap] = {}

    def knows(self, name: str) -> bool:
        return name in self._schemas

    def schema(self, name: str) -> Any:
        return self._schemas.get(name)

    def header_map(self, name: str) -> HeaderMap:
        return self._header_maps.get(name, {})

    def absorb(self, request: Message, response: Message) -> None:
        result = response.get("result")
        tools = result.get("tools") if isinstance(result, dict) else None
        if not isinstance(tools, list):
            return
        schemas: dict[str, Any] = {}
        header_maps: dict[str, HeaderMap] = {}
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                continue
            schema = tool.get("inputSchema")
            schemas[tool["name"]] = schema
            # An invalid annotation mirrors nothing: conforming clients drop the tool, and
            # servers validate no header for it.
            if find_invalid_x_mcp_header(schema) is None:
                header_maps[tool["name"]] = x_mcp_header_map(schema)
        assert isinstance(result, dict)
        asked_cursor = "cursor" in (request.get("params") or {})
        if not asked_cursor and not isinstance(result.get("nextCursor"), str):
            self._schemas, self._header_maps = schemas, header_maps
        else:
            self._schemas.update(schemas)
            self._header_maps.update(header_maps)


async def list_tools(
    exchange: Callable[[Message], Awaitable[Message]], meta: Mapping[str, Any], tools: ToolSchemas
) -> None:
    """Read a server's `tools/list` into `tools`, page after page, through `exchange`."""
    cursor: str | None = None
    seen: set[str] = set()
    for page in range(LIST_PAGE_CAP):
        params: dict[str, Any] = {"_meta": dict(meta)} if meta else {}
        if cursor is not None:
            params["cursor"] = cursor
        request = {
            "jsonrpc": "2.0",
            "id": f"mcp-front-tools-{page}",
            "method": "tools/list",
            "params": params,
        }
        response = await exchange(request)
        tools.absorb(request, response)
        result = response.get("result")
        cursor = result.get("nextCursor") if isinstance(result, dict) else None
        if not isinstance(cursor, str) or cursor in seen:
            return
        seen.add(cursor)

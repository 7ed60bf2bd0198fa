"""`options.toolFilter`: a service's tools, narrowed in what clients see and what they may call.

The filter wraps any upstream, so it holds for every backend kind and both protocol
eras. Listing and calling are filtered together: a tool hidden from `tools/list` but
callable by name would leak exactly what the filter is there to withhold. A refused call
gets the same answer as a tool that does not exist.
"""

from __future__ import annotations

from typing import Any

from mcp_front.backends.base import MessageSink, Upstream
from mcp_front.config import ToolFilter
from mcp_front.transports import jsonrpc
from mcp_front.transports.jsonrpc import Message


class ToolFilteredUpstream:
    """An `Upstream` that offers only the tools `tool_filter` permits."""

    def __init__(self, upstream: Upstream, tool_filter: ToolFilter) -> None:
        self._upstream = upstream
        self._filter = tool_filter

    async def request(self, message: Message, related: MessageSink) -> Message:
        method = message["method"]
        if method == "tools/call":
            name = (message.get("params") or {}).get("name")
            if not isinstance(name, str) or not self._filter.permits(name):
                return jsonrpc.error_response(message["id"], jsonrpc.INVALID_PARAMS, f"Unknown tool: {name}")
        response = await self._upstream.request(message, related)
        if method == "tools/list":
            return self._filtered_listing(response)
        return response

    def _filtered_listing(self, response: Message) -> Message:
        result = response.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            return response
        tools: list[Any] = [
            tool
            for tool in result["tools"]
            if isinstance(tool, dict)
            and isinstance(tool.get("name"), str)
            and self._filter.permits(tool["name"])
        ]
        return {**response, "result": {**result, "tools": tools}}

    async def notify(self, message: Message) -> None:
        await self._upstream.notify(message)

    async def respond(self, message: Message) -> None:
        await self._upstream.respond(message)

    async def aclose(self) -> None:
        await self._upstream.aclose()

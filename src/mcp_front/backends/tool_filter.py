"""`options.toolFilter`: a service's tools, narrowed in what clients see and what they may call.

The filter wraps any upstream, so it holds for every backend kind and both protocol
eras. Listing and calling are filtered together: a tool hidden from `tools/list` but
callable by name would leak exactly what the filter is there to withhold. A refused call
gets the same answer as a tool that does not exist.
"""

from __future__ import annotations

from mcp_front.backends.base import MessageSink, Upstream, WrappedUpstream, called_tool, listing_narrowed
from mcp_front.config import ToolFilter
from mcp_front.transports import jsonrpc
from mcp_front.transports.jsonrpc import Message


class ToolFilteredUpstream(WrappedUpstream):
    """An `Upstream` that offers only the tools `tool_filter` permits."""

    def __init__(self, upstream: Upstream, tool_filter: ToolFilter) -> None:
        super().__init__(upstream)
        self._filter = tool_filter

    async def request(self, message: Message, related: MessageSink) -> Message:
        method = message["method"]
        if method == "tools/call":
            name = called_tool(message)
            if name is None or not self._filter.permits(name):
                return jsonrpc.error_response(message["id"], jsonrpc.INVALID_PARAMS, f"Unknown tool: {name}")
        response = await self.inner.request(message, related)
        if method == "tools/list":
            return listing_narrowed(response, self._filter.permits)
        return response

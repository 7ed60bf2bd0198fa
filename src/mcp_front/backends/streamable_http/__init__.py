"""Streamable-HTTP MCP servers as backends: one backend session per client session.

`upstream` holds the session and its forwarder; its parts talk through the session's
`channel.HTTPChannel`: `server_stream` (the server's own GET stream) and `v2026_07_28`
(self-contained requests sent natively). `http11` is the lean keep-alive client they
share, `event_stream` the parser of what comes back.
"""

from mcp_front.backends.streamable_http.channel import DEFAULT_TIMEOUT
from mcp_front.backends.streamable_http.upstream import StreamableHTTPForwarder, StreamableHTTPUpstream

__all__ = ["DEFAULT_TIMEOUT", "StreamableHTTPForwarder", "StreamableHTTPUpstream"]

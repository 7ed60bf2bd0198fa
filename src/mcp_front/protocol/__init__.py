"""Wire facts the front transports and the backends share.

`jsonrpc` (the message envelope), `revisions` (protocol versions, and how a request
names its own), `headers` (HTTP header names of the streamable-HTTP transport),
`messages` (the MCP messages the gateway sends on its own behalf) and `tool_schemas`
(what the listings say about each tool's arguments). Nothing here imports from the
rest of `mcp_front` but its version and its error root, so both sides can depend on it.
"""

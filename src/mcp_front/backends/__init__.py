"""Backends: where a service's MCP traffic goes once a caller is let in.

Every kind of backend is a `BackendFactory` (`stdio`, `sse`, `streamable_http`, `inline`,
`aggregate`) whose sessions are `Upstream`s; `governance` wraps them in a service's
rules, and `session` is the core the session-ful kinds share.
"""

from mcp_front.backends.base import BackendError, BackendFactory, MessageSink, Upstream, UpstreamOpener

__all__ = ["BackendError", "BackendFactory", "MessageSink", "Upstream", "UpstreamOpener"]

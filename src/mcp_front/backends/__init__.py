"""Backends: where a service's MCP traffic goes once a caller is let in."""

from mcp_front.backends.base import BackendError, MessageSink, Upstream, UpstreamFactory

__all__ = ["BackendError", "MessageSink", "Upstream", "UpstreamFactory"]

"""MCP servers and helpers that end-to-end tests run as real processes."""

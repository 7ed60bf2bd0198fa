"""Benchmarks of mcp-front against direct use and other MCP bridges; see docs/performance.md."""

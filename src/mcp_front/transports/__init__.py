"""Front transports: how clients reach every service (streamable HTTP and legacy SSE)."""

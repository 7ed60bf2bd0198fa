"""The SDK's own client, pointed at a gateway with a credential."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx2
from mcp import Client, MCPError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

Transport = Literal["streamable-http", "sse"]


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@contextlib.asynccontextmanager
async def connect(
    url: str,
    *,
    token: str | None = None,
    transport: Transport = "streamable-http",
    mode: str = "legacy",
    **options: Any,
) -> AsyncIterator[Client]:
    """An initialised `mcp.Client` on `url` (…/mcp for streamable HTTP, …/sse for SSE)."""
    headers = auth_headers(token)
    if transport == "sse":
        async with Client(sse_client(url, headers=headers), mode=mode, **options) as client:
            yield client
        return
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http_client,
        Client(streamable_http_client(url, http_client=http_client), mode=mode, **options) as client,
    ):
        yield client


def text_of(result: Any) -> str:
    """The text of a tool result's first content block."""
    block = result.content[0]
    return str(block.text)


def mcp_error_in(exc: BaseException) -> MCPError | None:
    """The MCPError a client raised, digging through the task groups it crossed."""
    if isinstance(exc, MCPError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = mcp_error_in(inner)
            if found is not None:
                return found
    return None

"""`SSEForwarder` against the TypeScript `server-everything` in its legacy SSE mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_front.auth.principal import Principal
from mcp_front.backends.sse import SSEForwarder
from mcp_front.config import ServerConfig
from tests.support.everything import everything_server
from tests.support.raw import initialize_message
from tests.support.sinks import Inbox

pytestmark = pytest.mark.e2e


@pytest.fixture
def everything_sse(tmp_path: Path) -> Iterator[str]:
    with everything_server("sse", tmp_path / "everything.log") as server:
        yield server.url


async def test_everything_server_through_the_forwarder(everything_sse: str) -> None:
    server = ServerConfig.model_validate({"transportType": "sse", "url": everything_sse, "timeout": "20s"})
    async with SSEForwarder({"everything": server}).run() as forwarder:
        upstream = await forwarder.open("everything", Principal(subject="u-1"), Inbox())
        init = await upstream.request(initialize_message(1), Inbox())
        assert init["id"] == 1
        assert "result" in init
        await upstream.notify({"jsonrpc": "2.0", "method": "notifications/initialized"})

        listed = await upstream.request({"jsonrpc": "2.0", "id": "l", "method": "tools/list"}, Inbox())
        names = {tool["name"] for tool in listed["result"]["tools"]}
        assert {"echo", "get-sum", "trigger-long-running-operation"} <= names

        summed = await upstream.request(
            {
                "jsonrpc": "2.0",
                "id": "s",
                "method": "tools/call",
                "params": {"name": "get-sum", "arguments": {"a": 2, "b": 40}},
            },
            Inbox(),
        )
        assert summed["id"] == "s"
        assert "42" in summed["result"]["content"][0]["text"]

        related = Inbox()
        done = await upstream.request(
            {
                "jsonrpc": "2.0",
                "id": "p",
                "method": "tools/call",
                "params": {
                    "name": "trigger-long-running-operation",
                    "arguments": {"duration": 0.3, "steps": 3},
                    "_meta": {"progressToken": 99},
                },
            },
            related,
        )
        assert "completed" in done["result"]["content"][0]["text"]
        assert [m["params"]["progress"] for m in related.messages] == [1, 2, 3]
        await upstream.aclose()

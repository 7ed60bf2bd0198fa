"""`StreamableHTTPForwarder` against the TypeScript `server-everything` in streamable-HTTP mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_front.auth.principal import Principal
from mcp_front.backends.streamable_http import StreamableHTTPForwarder
from mcp_front.config import ServerConfig
from mcp_front.protocol.jsonrpc import Message
from tests.support.everything import everything_server
from tests.support.raw import initialize_message
from tests.support.sinks import Inbox

pytestmark = pytest.mark.e2e


@pytest.fixture
def everything_http(tmp_path: Path) -> Iterator[str]:
    with everything_server("streamableHttp", tmp_path / "everything.log") as server:
        yield server.url


def tool_call(request_id: str, name: str, arguments: dict[str, Any], **meta: Any) -> Message:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def test_everything_server_through_the_forwarder(everything_http: str) -> None:
    server = ServerConfig.model_validate(
        {"transportType": "streamable-http", "url": everything_http, "timeout": "20s"}
    )
    async with StreamableHTTPForwarder({"everything": server}).run() as forwarder:
        upstream = await forwarder.open("everything", Principal(subject="u-1"), Inbox())
        init = await upstream.request(initialize_message(1), Inbox())
        assert init["id"] == 1
        assert "result" in init
        assert upstream.session_id
        await upstream.notify({"jsonrpc": "2.0", "method": "notifications/initialized"})

        listed = await upstream.request({"jsonrpc": "2.0", "id": "l", "method": "tools/list"}, Inbox())
        names = {tool["name"] for tool in listed["result"]["tools"]}
        assert {"echo", "get-sum", "trigger-long-running-operation"} <= names

        summed = await upstream.request(tool_call("s", "get-sum", {"a": 2, "b": 40}), Inbox())
        assert summed["id"] == "s"
        assert "42" in summed["result"]["content"][0]["text"]

        related = Inbox()
        with anyio.fail_after(20):
            done = await upstream.request(
                tool_call(
                    "p", "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progressToken=99
                ),
                related,
            )
        assert "completed" in done["result"]["content"][0]["text"]
        progress = [m for m in related.messages if m.get("method") == "notifications/progress"]
        assert [m["params"]["progress"] for m in progress] == [1, 2, 3]
        await upstream.aclose()
        assert forwarder.session_count == 0

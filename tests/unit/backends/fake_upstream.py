"""A tiny in-memory `Upstream` for tests of the wrappers around one."""

from __future__ import annotations

from typing import Any

import anyio

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import MessageSink, Upstream
from mcp_front.protocol.jsonrpc import Message

TOOLS = ("query", "execute_sql", "fails", "broken", "slow")


class FakeUpstream:
    """Lists `TOOLS`; calling one answers as its name says (`fails` with `isError`,
    `broken` with a JSON-RPC error, `slow` never)."""

    def __init__(self) -> None:
        self.requests: list[Message] = []
        self.closed = False

    async def request(self, message: Message, related: MessageSink) -> Message:
        self.requests.append(message)
        result: dict[str, Any]
        if message["method"] == "tools/list":
            result = {"tools": [{"name": name, "inputSchema": {"type": "object"}} for name in TOOLS]}
        elif message["method"] == "tools/call":
            name = message["params"]["name"]
            if name == "broken":
                return {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32603, "message": "boom"}}
            if name == "slow":
                await anyio.sleep_forever()
            result = {"content": [{"type": "text", "text": name}], "isError": name == "fails"}
        else:
            result = {}
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}

    async def notify(self, message: Message) -> None:
        self.requests.append(message)

    async def respond(self, message: Message) -> None:
        self.requests.append(message)

    async def aclose(self) -> None:
        self.closed = True


def call(name: str, arguments: dict[str, Any] | None = None, request_id: int = 1) -> Message:
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


LIST: Message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


def opener_of(backend: FakeUpstream, opened: list[Principal]) -> Any:
    async def open_backend(principal: Principal, unsolicited: MessageSink) -> Upstream:
        opened.append(principal)
        return backend

    return open_backend


async def discard(message: Message) -> None:
    pass


def names(response: Message) -> list[str]:
    return [tool["name"] for tool in response["result"]["tools"]]

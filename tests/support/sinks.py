"""A message sink that keeps what it is given, for tests of upstreams."""

from __future__ import annotations

from mcp_front.protocol.jsonrpc import Message


class Inbox:
    """Records every message delivered to it, in order."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    def methods(self) -> list[str]:
        return [m.get("method", "") for m in self.messages]

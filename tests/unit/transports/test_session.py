"""How a session routes server messages that answer no particular request."""

from __future__ import annotations

import anyio

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import MessageSink
from mcp_front.protocol.jsonrpc import Message
from mcp_front.transports.session import FrontSession

SAMPLING = {"jsonrpc": "2.0", "id": 5, "method": "sampling/createMessage", "params": {}}
LOG = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}}


class RecordingUpstream:
    """An upstream whose requests wait until released, and which records what it is sent."""

    def __init__(self) -> None:
        self.responses: list[Message] = []
        self.release = anyio.Event()

    async def request(self, message: Message, related: MessageSink) -> Message:
        await self.release.wait()
        return {"jsonrpc": "2.0", "id": message["id"], "result": {}}

    async def notify(self, message: Message) -> None:
        return None

    async def respond(self, message: Message) -> None:
        self.responses.append(message)

    async def aclose(self) -> None:
        return None


def recorder() -> tuple[list[Message], MessageSink]:
    seen: list[Message] = []

    async def sink(message: Message) -> None:
        seen.append(message)

    return seen, sink


def session() -> tuple[FrontSession, RecordingUpstream]:
    front = FrontSession("id", "svc", Principal(subject="ada"))
    upstream = RecordingUpstream()
    front.upstream = upstream
    return front, upstream


async def test_with_one_request_in_flight_its_stream_gets_the_message() -> None:
    front, upstream = session()
    seen, sink = recorder()
    standalone_seen, standalone = recorder()
    front.standalone = standalone
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(front.handle_request, {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}, sink)
        await anyio.sleep(0.01)
        await front.deliver_unsolicited(LOG)
        upstream.release.set()
    assert seen == [LOG]
    assert standalone_seen == []


async def test_with_several_in_flight_the_standalone_stream_gets_it_else_the_newest() -> None:
    front, upstream = session()
    first_seen, first = recorder()
    second_seen, second = recorder()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(front.handle_request, {"jsonrpc": "2.0", "id": 1, "method": "a"}, first)
        tasks.start_soon(front.handle_request, {"jsonrpc": "2.0", "id": 2, "method": "b"}, second)
        await anyio.sleep(0.01)
        await front.deliver_unsolicited(LOG)
        standalone_seen, standalone = recorder()
        front.standalone = standalone
        await front.deliver_unsolicited(SAMPLING)
        upstream.release.set()
    assert (first_seen, second_seen) == ([], [LOG])
    assert standalone_seen == [SAMPLING]


async def test_a_server_request_nobody_can_hear_is_refused_at_once() -> None:
    front, upstream = session()
    await front.deliver_unsolicited(SAMPLING)
    await front.deliver_unsolicited(LOG)
    assert len(upstream.responses) == 1
    refusal = upstream.responses[0]
    assert refusal["id"] == 5
    assert refusal["error"]["code"] == -32603
    assert "no open stream" in refusal["error"]["message"]


async def test_client_cancellation_ends_the_request_without_an_answer() -> None:
    front, _ = session()
    _, sink = recorder()
    outcome: list[Message | None] = []

    async def call() -> None:
        outcome.append(await front.handle_request({"jsonrpc": "2.0", "id": "r1", "method": "slow"}, sink))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(call)
        await anyio.sleep(0.01)
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "r1"}}
        await front.handle_notification(cancel)
    assert outcome == [None]

"""A client whose event stream drops resumes it with Last-Event-ID and loses nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest

from tests.support.gateway import RunningGateway, bearer, running_gateway, stdio_service
from tests.support.raw import ACCEPT, RawSession

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": "Bearer t0k3n"}


@pytest.fixture
async def gw() -> AsyncIterator[RunningGateway]:
    async with running_gateway({"probe": stdio_service(serviceAuths=[bearer("t0k3n")])}) as running:
        yield running


def parse(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    return fields


async def read_events(response: httpx2.Response, count: int) -> list[dict[str, str]]:
    """The first `count` events of a stream (comments left out)."""
    found: list[dict[str, str]] = []
    buffer = ""
    async for text in response.aiter_text():
        buffer += text
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            if block.startswith(":"):
                continue
            found.append(parse(block))
            if len(found) == count:
                return found
    return found


def call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


async def test_a_dropped_answer_is_resumed_with_its_response(gw: RunningGateway) -> None:
    url = gw.service_url("probe")
    async with httpx2.AsyncClient(headers=AUTH, timeout=30) as http:
        session = await RawSession.open(http, url)
        headers = {
            "Accept": "text/event-stream, application/json",
            "Mcp-Session-Id": session.session_id,
            "MCP-Protocol-Version": "2025-11-25",
        }
        async with http.stream("POST", url, json=call(7, "sleep", {"seconds": 1}), headers=headers) as posted:
            (priming,) = await read_events(posted, 1)
        # The connection is gone before the tool answered; the request goes on.
        assert priming["data"] == ""
        resume = {**headers, "Last-Event-ID": priming["id"]}
        async with http.stream("GET", url, headers=resume) as resumed:
            assert resumed.status_code == 200
            events = await read_events(resumed, 2)
        assert len(events) == 1
        answer = json.loads(events[0]["data"])
        assert answer == {"jsonrpc": "2.0", "id": 7, "result": answer["result"]}
        assert answer["result"]["content"][0]["text"] == "slept 1.0"
        assert events[0]["id"] != priming["id"]


async def test_events_after_the_last_one_seen_are_replayed(gw: RunningGateway) -> None:
    url = gw.service_url("probe")
    async with httpx2.AsyncClient(headers=AUTH, timeout=30) as http:
        session = await RawSession.open(http, url)
        headers = {"Accept": ACCEPT, "Mcp-Session-Id": session.session_id}
        message = call(8, "progress", {"steps": 3})
        message["params"]["_meta"] = {"progressToken": "p"}
        response = await http.post(url, json=message, headers=headers)
        blocks = [parse(block) for block in response.text.strip().split("\n\n")]
        assert [json.loads(b["data"]).get("method") for b in blocks] == [
            "notifications/progress",
            "notifications/progress",
            "notifications/progress",
            None,
        ]
        with anyio.fail_after(10):
            async with http.stream(
                "GET", url, headers={**headers, "Last-Event-ID": blocks[1]["id"]}
            ) as again:
                replayed = await read_events(again, 5)
        assert [b["id"] for b in replayed] == [blocks[2]["id"], blocks[3]["id"]]
        assert json.loads(replayed[-1]["data"])["result"]["content"][0]["text"] == "done 3"


async def test_an_unknown_event_id_opens_a_plain_stream(gw: RunningGateway) -> None:
    url = gw.service_url("probe")
    async with httpx2.AsyncClient(headers=AUTH, timeout=30) as http:
        session = await RawSession.open(http, url)
        headers = {
            "Accept": "text/event-stream",
            "Mcp-Session-Id": session.session_id,
            "Last-Event-ID": "99/1",
        }
        async with http.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"

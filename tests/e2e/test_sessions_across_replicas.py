"""Several `mcp-front serve` processes on one Redis or PostgreSQL store behind a balancer
that sends each request to the next replica: one session, whichever replica a request
reaches; a replica killed mid-session, and the session goes on elsewhere."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.test_shared_stores import storage  # noqa: F401 - the fixture, shared
from tests.support.balancer import RoundRobin, round_robin
from tests.support.clients import connect, text_of
from tests.support.gateway import bearer, stdio_service
from tests.support.net import free_port
from tests.support.oidc import OTHER_USER, TEST_USER, OIDCServer, gateway_auth_config
from tests.support.process import gateway_process_on
from tests.support.sign_in import register, sign_in

pytestmark = pytest.mark.e2e

VERSION = "2025-11-25"
STATIC_TOKEN = "a-static-token-of-the-replicas-test"
SERVICES = {"probe": stdio_service(), "keyed": stdio_service(serviceAuths=[bearer(STATIC_TOKEN)])}
ACCEPT_BOTH = "application/json, text/event-stream"


@asynccontextmanager
async def replicas(
    count: int, store: dict[str, Any], port: int, oidc: OIDCServer, tmp_path: Path
) -> AsyncIterator[tuple[RoundRobin, list[Any]]]:
    """`count` replicas sharing `store`, all named by the balancer's URL on `port`."""
    public = f"http://127.0.0.1:{port}"
    auth = gateway_auth_config(public, oidc, storage=store)
    async with AsyncExitStack() as stack:
        processes = []
        for index in range(count):
            directory = tmp_path / f"replica-{index}"
            directory.mkdir()
            processes.append(
                stack.enter_context(
                    gateway_process_on(free_port(), directory, SERVICES, auth=auth, baseURL=public)
                )
            )
        balancer = await stack.enter_async_context(round_robin(port, [p.url for p in processes]))
        yield balancer, processes


async def signed_in(url: str, oidc: OIDCServer, user: dict[str, Any] = TEST_USER) -> str:
    await oidc.sign_in_as(user)
    client = (await register(url)).json()
    tokens = await sign_in(url, client["client_id"], f"{url}/probe")
    return str(tokens["access_token"])


def rpc(method: str, request_id: int | None = None, **params: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if request_id is not None:
        message["id"] = request_id
    return message


INITIALIZE = rpc(
    "initialize",
    1,
    protocolVersion=VERSION,
    capabilities={},
    clientInfo={"name": "replica-test", "version": "1"},
)


class RawSession:
    """A streamable-HTTP session spoken by hand, so each request's replica is known."""

    def __init__(self, http: httpx2.AsyncClient, endpoint: str, token: str) -> None:
        self.http, self.endpoint = http, endpoint
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": ACCEPT_BOTH,
            "MCP-Protocol-Version": VERSION,
        }
        self.id = ""

    async def start(self) -> None:
        response = await self.http.post(self.endpoint, json=INITIALIZE, headers=self.headers)
        assert response.status_code == 200, response.text
        self.id = response.headers["mcp-session-id"]
        self.headers["Mcp-Session-Id"] = self.id
        initialized = await self.http.post(
            self.endpoint, json=rpc("notifications/initialized"), headers=self.headers
        )
        assert initialized.status_code == 202, initialized.text

    async def call(self, tool: str, request_id: int, **arguments: Any) -> httpx2.Response:
        message = rpc("tools/call", request_id, name=tool, arguments=arguments)
        return await self.http.post(self.endpoint, json=message, headers=self.headers)


def tool_text(response: httpx2.Response) -> str:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        message = json.loads([d for d in data if d][-1])
    else:
        message = response.json()
    return str(message["result"]["content"][0]["text"])


async def test_a_sign_in_goes_from_replica_to_replica(
    storage: dict[str, Any],  # noqa: F811
    port: int,
    oidc: OIDCServer,
    tmp_path: Path,
) -> None:
    """Registration, /authorize, the identity provider's callback, the consent page and its
    form, /token and a refresh: each step on the next of three replicas."""
    async with replicas(3, storage, port, oidc, tmp_path) as (balancer, processes):
        url = f"http://127.0.0.1:{port}"
        await oidc.sign_in_as(TEST_USER)
        client = (await register(url)).json()
        tokens = await sign_in(url, client["client_id"], f"{url}/probe")
        assert set(balancer.served) == {p.url for p in processes}
        async with httpx2.AsyncClient(timeout=30) as http:
            refreshed = await http.post(
                f"{url}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": tokens["refresh_token"],
                    "client_id": client["client_id"],
                },
            )
        assert refreshed.status_code == 200, refreshed.text
        for token in (tokens["access_token"], refreshed.json()["access_token"]):
            async with connect(f"{url}/probe/mcp", token=token) as mcp:
                assert text_of(await mcp.call_tool("echo", {"text": "signed in"})) == "signed in"


async def test_one_sessions_requests_alternate_between_replicas(
    storage: dict[str, Any],  # noqa: F811
    port: int,
    oidc: OIDCServer,
    tmp_path: Path,
) -> None:
    async with replicas(2, storage, port, oidc, tmp_path) as (balancer, processes):
        url = f"http://127.0.0.1:{port}"
        token = await signed_in(url, oidc)
        first = len(balancer.served)
        # The SDK's client: every call answered by the one process of the session.
        async with connect(f"{url}/probe/mcp", token=token) as mcp:
            instances = {text_of(await mcp.call_tool("instance", {})) for _ in range(4)}
            assert text_of(await mcp.call_tool("echo", {"text": "across"})) == "across"
        assert len(instances) == 1
        assert set(balancer.served[first:]) == {p.url for p in processes}

        async with httpx2.AsyncClient(timeout=60) as http:
            session = RawSession(http, f"{url}/probe/mcp", token)
            await session.start()
            owner_replica, _, _ = session.id.partition(".")
            assert owner_replica
            seen = []
            for request_id in range(2, 6):
                response = await session.call("instance", request_id)
                seen.append(tool_text(response))
                assert response.headers["mcp-session-id"] == session.id
            assert len(set(seen)) == 1

            # A stream resumed on whichever replica: the answer the client missed comes again.
            streamed = await http.post(
                session.endpoint,
                json=rpc("tools/call", 9, name="echo", arguments={"text": "resumed"}),
                headers={**session.headers, "Accept": "text/event-stream, application/json"},
            )
            assert tool_text(streamed) == "resumed"
            event_ids = [line[3:].strip() for line in streamed.text.splitlines() if line.startswith("id:")]
            for _ in range(2):  # once through each replica
                resumed = await http.get(
                    session.endpoint,
                    headers={**session.headers, "Accept": "text/event-stream", "Last-Event-ID": event_ids[0]},
                )
                assert tool_text(resumed) == "resumed"

            # Another user's token never reaches the session, through either replica.
            other = await signed_in(url, oidc, OTHER_USER)
            for process in processes:
                hijack = await http.post(
                    f"{process.url}/probe/mcp",
                    json=rpc("tools/call", 10, name="echo", arguments={"text": "x"}),
                    headers={**session.headers, "Authorization": f"Bearer {other}"},
                )
                assert hijack.status_code == 404, hijack.text

            deleted = await http.delete(session.endpoint, headers=session.headers)
            assert deleted.status_code == 200
            for process in processes:
                gone = await http.post(
                    f"{process.url}/probe/mcp",
                    json=rpc("tools/call", 11, name="echo", arguments={"text": "x"}),
                    headers=session.headers,
                )
                assert gone.status_code == 404, gone.text
        await oidc.sign_in_as(TEST_USER)


async def test_legacy_sse_messages_reach_the_replica_holding_the_stream(
    storage: dict[str, Any],  # noqa: F811
    port: int,
    oidc: OIDCServer,
    tmp_path: Path,
) -> None:
    async with replicas(2, storage, port, oidc, tmp_path) as (balancer, processes):
        url = f"http://127.0.0.1:{port}"
        token = await signed_in(url, oidc)
        first = len(balancer.served)
        async with connect(f"{url}/probe/sse", token=token, transport="sse") as mcp:
            texts = [text_of(await mcp.call_tool("echo", {"text": f"sse {n}"})) for n in range(4)]
            instances = {text_of(await mcp.call_tool("instance", {})) for _ in range(2)}
        assert texts == [f"sse {n}" for n in range(4)]
        assert len(instances) == 1
        assert set(balancer.served[first:]) == {p.url for p in processes}


async def test_a_killed_replicas_session_goes_on_elsewhere(
    storage: dict[str, Any],  # noqa: F811
    port: int,
    oidc: OIDCServer,
    tmp_path: Path,
) -> None:
    async with replicas(3, storage, port, oidc, tmp_path) as (balancer, processes):
        url = f"http://127.0.0.1:{port}"
        token = await signed_in(url, oidc)
        async with httpx2.AsyncClient(timeout=60) as http:
            session = RawSession(http, f"{url}/probe/mcp", token)
            await session.start()
            before = tool_text(await session.call("instance", 2))
            owner_url = balancer.opened[session.id]
            owner = next(p for p in processes if p.url == owner_url)
            owner.process.send_signal(signal.SIGKILL)
            owner.process.wait(timeout=30)

            after = await session.call("instance", 3)
            assert after.headers["mcp-session-id"] == session.id
            respawned = tool_text(after)
            assert respawned != before
            # The session stays with the replica that took it over, whichever one is asked.
            for request_id in range(4, 7):
                again = await session.call("instance", request_id)
                assert tool_text(again) == respawned
                assert again.headers["mcp-session-id"] == session.id
            assert tool_text(await session.call("echo", 7, text="still here")) == "still here"

        # The SDK's client, its replica killed between two calls: it sees no error.
        async with connect(f"{url}/probe/mcp", token=token) as mcp:
            first = text_of(await mcp.call_tool("instance", {}))
            owner_url = list(balancer.opened.values())[-1]
            owner = next(p for p in processes if p.url == owner_url)
            assert owner.process.poll() is None, "the balancer opened the session on a dead replica"
            owner.process.send_signal(signal.SIGKILL)
            owner.process.wait(timeout=30)
            second = text_of(await mcp.call_tool("instance", {}))
            assert second != first
            assert text_of(await mcp.call_tool("echo", {"text": "no error"})) == "no error"


async def test_a_forged_forwarding_header_is_refused(
    storage: dict[str, Any],  # noqa: F811
    port: int,
    oidc: OIDCServer,
    tmp_path: Path,
) -> None:
    async with replicas(2, storage, port, oidc, tmp_path) as (_balancer, processes):
        url = f"http://127.0.0.1:{port}"
        token = await signed_in(url, oidc)
        async with httpx2.AsyncClient(timeout=60) as http:
            session = RawSession(http, f"{url}/probe/mcp", token)
            await session.start()
            forgeries = ["1.00", f"{2**31}.{'0' * 64}", "", "garbage"]
            for process in processes:
                for forged in forgeries:
                    refused = await http.post(
                        f"{process.url}/probe/mcp",
                        json=rpc("tools/call", 2, name="echo", arguments={"text": "x"}),
                        headers={**session.headers, "Mcp-Front-Forwarded": forged},
                    )
                    assert refused.status_code == 403, refused.text
                message = await http.post(
                    f"{process.url}/probe/message?sessionId={session.id}",
                    json=rpc("notifications/initialized"),
                    headers={**session.headers, "Mcp-Front-Forwarded": forgeries[1]},
                )
                assert message.status_code == 403
            # Without the header, each replica serves the session (one of them by forwarding).
            for process in processes:
                answered = await http.post(
                    f"{process.url}/probe/mcp",
                    json=rpc("tools/call", 3, name="echo", arguments={"text": "genuine"}),
                    headers=session.headers,
                )
                assert tool_text(answered) == "genuine"


async def test_a_session_opened_with_a_static_credential_is_taken_over_too(
    storage: dict[str, Any],  # noqa: F811
    port: int,
    oidc: OIDCServer,
    tmp_path: Path,
) -> None:
    async with replicas(2, storage, port, oidc, tmp_path) as (balancer, processes):
        url = f"http://127.0.0.1:{port}"
        async with httpx2.AsyncClient(timeout=60) as http:
            session = RawSession(http, f"{url}/keyed/mcp", STATIC_TOKEN)
            await session.start()
            before = tool_text(await session.call("instance", 2))
            owner = next(p for p in processes if p.url == balancer.opened[session.id])
            owner.process.send_signal(signal.SIGKILL)
            owner.process.wait(timeout=30)
            after = await session.call("instance", 3)
            assert after.headers["mcp-session-id"] == session.id
            assert tool_text(after) != before

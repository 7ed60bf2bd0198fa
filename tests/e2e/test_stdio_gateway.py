"""A stdio service through the gateway, with the SDK's client on both front transports."""

from __future__ import annotations

import os

import anyio
import httpx2
import pytest
from mcp import MCPError
from mcp_types import CreateMessageResult, ListRootsResult, Root, TextContent

from mcp_front.backends.child_process import INHERITED_ENVIRONMENT
from tests.support.clients import Transport, connect, mcp_error_in, text_of
from tests.support.gateway import UNSANDBOXED, bearer, running_gateway, stdio_service
from tests.support.process import alive
from tests.support.raw import RawSession

pytestmark = pytest.mark.e2e

TRANSPORTS: list[Transport] = ["streamable-http", "sse"]
ENDPOINT = {"streamable-http": "mcp", "sse": "sse"}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("mode", ["legacy", "auto", "2026-07-28"])
async def test_lists_and_calls_tools(transport: Transport, mode: str) -> None:
    async with running_gateway({"probe": stdio_service(serviceAuths=[bearer("t0k3n")])}) as gw:
        url = gw.service_url("probe", ENDPOINT[transport])
        async with connect(url, token="t0k3n", transport=transport, mode=mode) as client:
            tools = await client.list_tools()
            assert {"pid", "echo", "crash", "sample"} <= {tool.name for tool in tools.tools}
            result = await client.call_tool("echo", {"text": "through the gateway"})
            assert text_of(result) == "through the gateway"
            assert not result.is_error
            if transport == "streamable-http":
                expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
                assert client.protocol_version == expected


async def test_progress_and_logging_reach_a_2026_client() -> None:
    progress_seen: list[float] = []
    logs_seen: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        progress_seen.append(progress)

    async def on_log(params: object) -> None:
        logs_seen.append(str(getattr(params, "data", "")))

    async with running_gateway({"probe": stdio_service(serviceAuths=[bearer("t0k3n")])}) as gw:
        async with connect(
            gw.service_url("probe"), token="t0k3n", mode="auto", logging_callback=on_log
        ) as client:
            assert client.protocol_version == "2026-07-28"
            result = await client.call_tool("progress", {"steps": 3}, progress_callback=on_progress)
            assert text_of(result) == "done 3"
            assert progress_seen == [1, 2, 3]
            assert text_of(await client.call_tool("log", {"message": "modern log"})) == "logged"
            assert "modern log" in logs_seen
            with pytest.raises(MCPError, match="2026-07-28, which has no server-to-client requests"):
                await client.call_tool("sample", {"prompt": "hi"})


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_list_change_notifications_reach_the_client(transport: Transport) -> None:
    seen: list[str] = []

    async def on_message(message: object) -> None:
        root = getattr(message, "root", message)
        seen.append(str(getattr(root, "method", "")))

    async with running_gateway({"probe": stdio_service(serviceAuths=[bearer("t0k3n")])}) as gw:
        url = gw.service_url("probe", ENDPOINT[transport])
        async with connect(url, token="t0k3n", transport=transport, message_handler=on_message) as client:
            assert text_of(await client.call_tool("announce", {})) == "announced"
            with anyio.fail_after(5):
                while "notifications/resources/list_changed" not in seen:
                    await anyio.sleep(0.02)
            assert "notifications/tools/list_changed" in seen


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_progress_logging_sampling_and_roots_cross_the_gateway(transport: Transport) -> None:
    progress_seen: list[float] = []
    logs_seen: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        progress_seen.append(progress)

    async def on_log(params: object) -> None:
        logs_seen.append(str(getattr(params, "data", "")))

    async def on_sampling(context: object, params: object) -> CreateMessageResult:
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="sampled answer"), model="test-model"
        )

    async def on_roots(context: object) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri="file:///workspace/project")])

    async with running_gateway({"probe": stdio_service(serviceAuths=[bearer("t0k3n")])}) as gw:
        url = gw.service_url("probe", ENDPOINT[transport])
        async with connect(
            url,
            token="t0k3n",
            transport=transport,
            sampling_callback=on_sampling,
            list_roots_callback=on_roots,
            logging_callback=on_log,
        ) as client:
            result = await client.call_tool("progress", {"steps": 3}, progress_callback=on_progress)
            assert text_of(result) == "done 3"
            assert progress_seen == [1, 2, 3]
            assert text_of(await client.call_tool("log", {"message": "hello log"})) == "logged"
            assert "hello log" in logs_seen
            assert text_of(await client.call_tool("sample", {"prompt": "hi"})) == "sampled answer"
            roots = await client.call_tool("roots", {})
            assert "file:///workspace/project" in text_of(roots)


async def test_each_principal_gets_its_own_process_and_environment() -> None:
    os.environ["MCP_FRONT_TEST_SECRET"] = "gateway-only-secret"
    try:
        service = stdio_service(
            env={"WHO": "{{principal.email}}", "STATIC": "configured"},
            serviceAuths=[
                bearer("alice-token", user="alice@example.com"),
                bearer("bob-token", user="bob@example.com"),
            ],
        )
        async with running_gateway({"probe": service}) as gw:
            url = gw.service_url("probe")
            async with connect(url, token="alice-token") as alice, connect(url, token="bob-token") as bob:
                alice_process = text_of(await alice.call_tool("instance", {}))
                bob_process = text_of(await bob.call_tool("instance", {}))
                assert alice_process != bob_process
                assert text_of(await alice.call_tool("env", {"name": "WHO"})) == "alice@example.com"
                assert text_of(await bob.call_tool("env", {"name": "WHO"})) == "bob@example.com"
                assert text_of(await bob.call_tool("env", {"name": "STATIC"})) == "configured"
                assert text_of(await alice.call_tool("env", {"name": "MCP_FRONT_TEST_SECRET"})) == "<unset>"
                names = (await alice.call_tool("env_names", {})).structured_content
                assert names is not None
                # bubblewrap adds PWD, the folder the child starts in.
                assert set(names["result"]) <= {"WHO", "STATIC", "PWD", *INHERITED_ENVIRONMENT}
            # Same principal, two sessions: two processes.
            async with (
                connect(url, token="alice-token") as first,
                connect(url, token="alice-token") as second,
            ):
                first_process = text_of(await first.call_tool("instance", {}))
                assert first_process != text_of(await second.call_tool("instance", {}))
    finally:
        del os.environ["MCP_FRONT_TEST_SECRET"]


async def test_idle_process_is_reaped_and_respawned_without_the_client_noticing() -> None:
    service = stdio_service(serviceAuths=[bearer("t0k3n")], sandbox=UNSANDBOXED)
    proxy = {"sessions": {"timeout": "300ms", "cleanupInterval": "100ms"}}
    async with running_gateway({"probe": service}, proxy=proxy) as gw:
        async with connect(gw.service_url("probe"), token="t0k3n") as client:
            first_pid = int(text_of(await client.call_tool("pid", {})))
            with anyio.fail_after(10):
                while gw.gateway.pool.process_count:
                    await anyio.sleep(0.05)
            assert not alive(first_pid)
            result = await client.call_tool("echo", {"text": "still here"})
            assert text_of(result) == "still here"
            assert int(text_of(await client.call_tool("pid", {}))) != first_pid


async def test_crash_fails_in_flight_request_naming_the_service_then_respawns() -> None:
    service = stdio_service(serviceAuths=[bearer("t0k3n")], sandbox=UNSANDBOXED)
    async with running_gateway({"probe": service}) as gw:
        async with connect(gw.service_url("probe"), token="t0k3n") as client:
            first_pid = int(text_of(await client.call_tool("pid", {})))
            with pytest.raises(MCPError) as raised:
                await client.call_tool("crash", {"message": "boom"})
            assert "service 'probe' stopped unexpectedly (exit code 3)" in str(raised.value)
            assert text_of(await client.call_tool("echo", {"text": "back"})) == "back"
            assert int(text_of(await client.call_tool("pid", {}))) != first_pid


async def test_sessions_per_principal_are_limited_with_a_clear_error() -> None:
    service = stdio_service(serviceAuths=[bearer("t0k3n", user="ci@example.com")])
    async with running_gateway({"probe": service}, proxy={"sessions": {"maxPerUser": 2}}) as gw:
        url = gw.service_url("probe")
        async with connect(url, token="t0k3n") as first, connect(url, token="t0k3n") as second:
            async with anyio.create_task_group() as busy:
                busy.start_soon(first.call_tool, "sleep", {"seconds": 1.5})
                busy.start_soon(second.call_tool, "sleep", {"seconds": 1.5})
                await anyio.sleep(0.5)
                with pytest.raises(Exception) as raised:  # noqa: PT011 - the MCPError inside is checked below
                    async with connect(url, token="t0k3n"):
                        pass
            error = mcp_error_in(raised.value)
            assert error is not None, raised.value
            assert error.error.code == -32005
            assert error.error.message == (
                "ci@example.com already has 2 sessions busy with requests (the per-user limit); "
                "try again when one of them finishes"
            )
            assert gw.gateway.pool.process_count == 2


async def test_abandoned_idle_sessions_make_room_and_resume_transparently() -> None:
    service = stdio_service(serviceAuths=[bearer("t0k3n", user="ci@example.com")], sandbox=UNSANDBOXED)
    async with (
        running_gateway({"probe": service}, proxy={"sessions": {"maxPerUser": 2}}) as gw,
        httpx2.AsyncClient(headers={"Authorization": "Bearer t0k3n"}) as http,
    ):
        sessions = [await RawSession.open(http, gw.service_url("probe")) for _ in range(3)]
        pids = [int(await session.call_tool_text("pid", {})) for session in sessions]
        assert gw.gateway.pool.process_count == 2
        assert not alive(pids[0])
        # The oldest session lost only its process: it answers again, in a new one.
        assert await sessions[0].call_tool_text("echo", {"text": "resumed"}) == "resumed"
        assert gw.gateway.pool.process_count == 2


async def test_shutdown_leaves_no_process_behind() -> None:
    pids: list[int] = []
    service = stdio_service(serviceAuths=[bearer("t0k3n")], sandbox=UNSANDBOXED)
    async with running_gateway({"probe": service}) as gw:
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer t0k3n"}) as http:
            for _ in range(3):
                session = await RawSession.open(http, gw.service_url("probe"))
                pids.append(int(await session.call_tool_text("pid", {})))
        assert gw.gateway.pool.process_count == 3
    assert len(set(pids)) == 3
    assert not [pid for pid in pids if alive(pid)]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize(
    ("tool_filter", "visible", "hidden"),
    [
        ({"mode": "allow", "list": ["echo", "pid"]}, {"echo", "pid"}, "crash"),
        ({"mode": "block", "list": ["crash", "env"]}, {"echo", "pid"}, "env"),
    ],
)
async def test_tool_filter_applies_to_listing_and_calling(
    mode: str, tool_filter: dict[str, object], visible: set[str], hidden: str
) -> None:
    service = stdio_service(serviceAuths=[bearer("t0k3n")], options={"toolFilter": tool_filter})
    async with (
        running_gateway({"probe": service}) as gw,
        connect(gw.service_url("probe"), token="t0k3n", mode=mode) as client,
    ):
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert visible <= names
        assert hidden not in names
        if tool_filter["mode"] == "allow":
            assert names == visible
        with pytest.raises(MCPError, match=f"Unknown tool: {hidden}"):
            await client.call_tool(hidden, {"name": "HOME"} if hidden == "env" else {})
        assert text_of(await client.call_tool("echo", {"text": "allowed"})) == "allowed"

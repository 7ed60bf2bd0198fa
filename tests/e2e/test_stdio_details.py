"""Stdio service details: start-up budget, working directory, stderr logging, pings, basic auth."""

from __future__ import annotations

import base64
import logging
import sys
from pathlib import Path

import anyio
import httpx2
import pytest

from tests.support.clients import connect, text_of
from tests.support.gateway import bearer, running_gateway, stdio_service
from tests.support.raw import ACCEPT, RawSession, initialize_message

pytestmark = pytest.mark.e2e


async def test_a_child_that_never_answers_initialize_fails_within_its_budget() -> None:
    silent = {
        "transportType": "stdio",
        "command": sys.executable,
        "args": ["-c", "import time; time.sleep(60)"],
        "startupTimeout": "1s",
        "serviceAuths": [bearer("t0k3n")],
    }
    async with (
        running_gateway({"silent": silent}) as gw,
        httpx2.AsyncClient(headers={"Authorization": "Bearer t0k3n"}) as http,
    ):
        with anyio.fail_after(10):
            response = await http.post(
                gw.service_url("silent"), json=initialize_message(), headers={"Accept": ACCEPT}
            )
        assert response.status_code == 200
        error = response.json()["error"]
        assert error["code"] == -32001
        assert error["message"] == "service 'silent' did not answer initialize within 1s"
        assert "mcp-session-id" not in response.headers
        with anyio.fail_after(10):
            while gw.gateway.pool.process_count:
                await anyio.sleep(0.05)


async def test_a_command_that_does_not_exist_is_a_clear_error() -> None:
    missing = {
        "transportType": "stdio",
        "command": "/nonexistent/mcp-server",
        "serviceAuths": [bearer("t0k3n")],
    }
    async with (
        running_gateway({"missing": missing}) as gw,
        httpx2.AsyncClient(headers={"Authorization": "Bearer t0k3n"}) as http,
    ):
        response = await http.post(
            gw.service_url("missing"), json=initialize_message(), headers={"Accept": ACCEPT}
        )
        error = response.json()["error"]
        assert error["message"] == "service 'missing' could not be started: No such file or directory"


async def test_working_directory_is_configurable(tmp_path: Path) -> None:
    service = stdio_service(cwd=str(tmp_path), serviceAuths=[bearer("t0k3n")])
    async with (
        running_gateway({"probe": service}) as gw,
        connect(gw.service_url("probe"), token="t0k3n") as client,
    ):
        assert text_of(await client.call_tool("cwd", {})) == str(tmp_path)


async def test_stderr_is_logged_with_service_and_principal_and_rate_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_front.backends.stdio")
    service = stdio_service(serviceAuths=[bearer("t0k3n", user="ada@example.com")])
    async with (
        running_gateway({"probe": service}) as gw,
        connect(gw.service_url("probe"), token="t0k3n") as client,
    ):
        assert text_of(await client.call_tool("spam", {"lines": 1000})) == "wrote 1000"
        await client.call_tool("echo", {"text": "after the noise"})
        await anyio.sleep(0.2)
        await client.call_tool("spam", {"lines": 1})
        with anyio.fail_after(5):
            while not any("suppressed" in r.getMessage() for r in caplog.records):
                await anyio.sleep(0.05)
    noise = [r for r in caplog.records if "noise" in r.getMessage()]
    assert 200 <= len(noise) < 260
    first = noise[0]
    assert first.service == "probe"  # type: ignore[attr-defined]
    assert first.principal == "ada@example.com"  # type: ignore[attr-defined]
    assert "[probe ada@example.com pid=" in first.getMessage()
    suppressed = next(r for r in caplog.records if "suppressed" in r.getMessage())
    assert "stderr lines suppressed" in suppressed.getMessage()


async def test_open_streams_get_comment_pings() -> None:
    async with (
        running_gateway({"probe": stdio_service(serviceAuths=[bearer("t0k3n")])}, ping_interval=0.2) as gw,
        httpx2.AsyncClient(headers={"Authorization": "Bearer t0k3n"}) as http,
    ):
        session = await RawSession.open(http, gw.service_url("probe"))
        headers = {"Accept": "text/event-stream", "Mcp-Session-Id": session.session_id}
        async with http.stream("GET", gw.service_url("probe"), headers=headers) as stream:
            pings = 0
            with anyio.fail_after(5):
                async for line in stream.aiter_lines():
                    pings += line == ": ping"
                    if pings >= 3:
                        break
        assert pings == 3
        call = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "sleep", "arguments": {"seconds": 0.7}},
        }
        slow = await session.post(call)
        assert slow.headers["content-type"].startswith("text/event-stream")
        assert ": ping" in slow.text
        assert '"slept 0.7"' in slow.text


async def test_basic_credentials_admit_their_principal() -> None:
    service = stdio_service(
        env={"WHO": "{{principal.subject}}"},
        serviceAuths=[
            {"type": "basic", "username": "ops", "password": "pa55word", "user": "ops@example.com"}
        ],
    )
    async with running_gateway({"probe": service}) as gw:
        url = gw.service_url("probe")
        good = "Basic " + base64.b64encode(b"ops:pa55word").decode()
        async with httpx2.AsyncClient(headers={"Authorization": good}) as http:
            session = await RawSession.open(http, url)
            assert await session.call_tool_text("env", {"name": "WHO"}) == "ops@example.com"
        bad = "Basic " + base64.b64encode(b"ops:wrong").decode()
        async with httpx2.AsyncClient(headers={"Authorization": bad}) as http:
            response = await http.post(url, json=initialize_message(), headers={"Accept": ACCEPT})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="mcp-front"'

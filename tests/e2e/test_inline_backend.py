"""Inline tools behind the gateway: the SDK client lists and calls a command tool and an HTTP
tool over both front transports, and hostile arguments stay inert data."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_front.config import ConfigError, load_config
from tests.support.clients import Transport, connect, mcp_error_in, text_of
from tests.support.gateway import RunningGateway, bearer, running_gateway
from tests.support.net import free_port, serving

pytestmark = pytest.mark.e2e

ENDPOINT = {"streamable-http": "mcp", "sse": "sse"}
PRINT_ARGV = "import json, sys; print(json.dumps({'argv': sys.argv[1:]}))"


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.scope["raw_path"].decode(),
            "query": dict(request.query_params),
            "headers": {name.lower(): value for name, value in request.headers.items()},
            "body": json.loads(body) if body else None,
        }
    )


@contextlib.asynccontextmanager
async def http_api() -> AsyncIterator[str]:
    port = free_port()
    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])
    async with serving(app, port, lifespan="off"):
        yield f"http://127.0.0.1:{port}"


def inline_service(api: str) -> dict[str, Any]:
    text = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    return {
        "transportType": "inline",
        "serviceAuths": [bearer("t0k3n")],
        "inline": {
            "description": "Tools for the tests",
            "tools": [
                {
                    "name": "argv",
                    "description": "Print the arguments it gets",
                    "inputSchema": text,
                    "command": sys.executable,
                    "args": ["-c", PRINT_ARGV, "{{text}}"],
                },
                {
                    "name": "lookup",
                    "description": "Look an item up",
                    "inputSchema": {
                        "type": "object",
                        "properties": {"id": {"type": "string"}, "verbose": {"type": "boolean"}},
                        "required": ["id"],
                    },
                    "http": {
                        "method": "POST",
                        "url": f"{api}/items/{{{{id}}}}",
                        "body": {"verbose": "{{verbose}}", "note": "about {{id}}"},
                    },
                },
            ],
        },
    }


def with_touch(service: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`service` with a tool that creates a file, and `folder` writable for its commands,
    so that a canary there would show a shell having run."""
    path = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
    touch = {"name": "touch", "inputSchema": path, "command": "touch", "args": ["{{path}}"]}
    service["inline"]["tools"].append(touch)
    return {**service, "sandbox": {"writablePaths": [str(folder)]}}


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with http_api() as api:
        services = {
            "tools": with_touch(inline_service(api), tmp_path),
            "narrowed": {
                **inline_service(api),
                "options": {"toolFilter": {"mode": "allow", "list": ["argv"]}},
            },
        }
        async with running_gateway(services) as running:
            yield running


@pytest.mark.parametrize("front", ["streamable-http", "sse"])
async def test_inline_tools_over_every_front_transport(gw: RunningGateway, front: Transport) -> None:
    async with connect(gw.service_url("tools", ENDPOINT[front]), token="t0k3n", transport=front) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == {"argv", "lookup", "touch"}
        assert tools["argv"].description == "Print the arguments it gets"
        assert tools["lookup"].input_schema["required"] == ["id"]

        result = await client.call_tool("argv", {"text": "hello world"})
        assert not result.is_error
        assert result.structured_content == {"argv": ["hello world"]}

        result = await client.call_tool("lookup", {"id": "a/b?c=d", "verbose": True})
        assert not result.is_error
        seen = result.structured_content
        assert seen is not None
        assert seen["method"] == "POST"
        assert seen["path"] == "/items/a%2Fb%3Fc%3Dd"  # one path segment, no query
        assert seen["query"] == {}
        assert seen["body"] == {"verbose": True, "note": "about a/b?c=d"}
        # The client's credential is for the gateway only.
        assert "authorization" not in seen["headers"]
        assert "cookie" not in seen["headers"]

        result = await client.call_tool("argv", {"text": 42})
        assert result.is_error
        assert "arguments.text: 42 is not of type 'string'" in text_of(result)


async def test_a_tool_filter_narrows_inline_tools_in_list_and_call(gw: RunningGateway) -> None:
    async with connect(gw.service_url("narrowed"), token="t0k3n") as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == {"argv"}
        with pytest.raises(Exception) as raised:  # noqa: PT011 - the SDK wraps it in task groups
            await client.call_tool("lookup", {"id": "x"})
        error = mcp_error_in(raised.value)
        assert error is not None
        assert error.error.message == "Unknown tool: lookup"


async def test_inline_tools_in_the_modern_era(gw: RunningGateway) -> None:
    async with connect(gw.service_url("tools"), token="t0k3n", mode="2026-07-28") as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == {"argv", "lookup", "touch"}
        result = await client.call_tool("argv", {"text": "modern"})
        assert result.structured_content == {"argv": ["modern"]}


async def test_hostile_arguments_are_inert(gw: RunningGateway, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.write_text("still here")
    created = tmp_path / "created"
    hostile = [
        f"; rm -f {canary}",
        f"$(rm -f {canary})",
        f"`touch {created}`",
        f"x\nrm -f {canary}\n",
        f"' && touch {created} && '",
        f'" ; touch {created} ; "',
        f"| touch {created}",
        "*",
    ]
    async with connect(gw.service_url("tools"), token="t0k3n") as client:
        for value in hostile:
            result = await client.call_tool("argv", {"text": value})
            assert not result.is_error, text_of(result)
            assert result.structured_content == {"argv": [value]}

        result = await client.call_tool("argv", {"text": "--exec"})
        assert result.is_error
        assert text_of(result) == (
            'argv was not run: argument "text" starts with "-", which the command could take as an option'
        )
    assert canary.read_text() == "still here"
    assert not created.exists()
    # A command can write there: the canary would have shown it.
    async with connect(gw.service_url("tools"), token="t0k3n") as client:
        assert not (await client.call_tool("touch", {"path": str(created)})).is_error
    assert created.exists()


async def test_undeclared_arguments_and_dot_segments_are_refused_before_anything_runs(
    gw: RunningGateway,
) -> None:
    async with connect(gw.service_url("tools"), token="t0k3n") as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert listed["lookup"].input_schema["additionalProperties"] is False
        sneaky = await client.call_tool("argv", {"text": "hi", "extra": "--exec"})
        assert sneaky.is_error
        assert "extra" in text_of(sneaky)
        climbing = await client.call_tool("lookup", {"id": ".."})
        assert climbing.is_error
        assert 'argument "id" is only dots' in text_of(climbing)
        fine = await client.call_tool("lookup", {"id": "a..b"})
        assert not fine.is_error, text_of(fine)
        assert fine.structured_content is not None
        assert fine.structured_content["path"] == "/items/a..b"


async def test_a_placeholder_outside_the_input_schema_is_a_config_error() -> None:
    service = inline_service("http://127.0.0.1:1")
    service["inline"]["tools"][0]["args"] = ["-c", PRINT_ARGV, "{{txet}}"]
    with pytest.raises(ConfigError) as raised:
        load_config({"mcpServers": {"tools": service}}, environ={})
    assert [str(issue) for issue in raised.value.issues] == [
        'mcpServers.tools.inline.tools[0].args[2]: {{txet}} names no property of "inputSchema" — '
        'add "txet" to inputSchema.properties, or fix the name'
    ]

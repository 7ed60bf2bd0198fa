"""InlineUpstream: the MCP methods it answers, and how command and HTTP tool calls come out."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx2
import pytest

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError
from mcp_front.backends.inline import InlineToolRegistry, InlineUpstream
from mcp_front.backends.inline_http import call_http, http_client
from mcp_front.config import ServerConfig, load_config
from mcp_front.protocol import jsonrpc
from mcp_front.protocol.jsonrpc import Message

ALICE = Principal(subject="alice-sub", email="alice@example.com")
BOB = Principal(subject="bob-sub", email="bob@example.com")
SECRET = "sup3r-s3cret-t0ken"
PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"
STRING = {"type": "string"}


def tool(name: str, properties: dict[str, Any] | None = None, **action: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties or {}}
    return {"name": name, "description": f"the {name} tool", "inputSchema": schema, **action}


def server(*tools: dict[str, Any], **extra: Any) -> ServerConfig:
    return ServerConfig.model_validate(
        {"transportType": "inline", "inline": {"description": "test tools", "tools": list(tools)}, **extra}
    )


def with_secret(*tools: dict[str, Any]) -> ServerConfig:
    """A server whose tools may read SECRET with {"$env": "TOKEN"}, as the loader resolves it."""
    document = {"mcpServers": {"tools": {"transportType": "inline", "inline": {"tools": list(tools)}}}}
    return load_config(document, environ={"TOKEN": SECRET}).mcp_servers["tools"]


async def ignore(message: Message) -> None:
    pass


@pytest.fixture
async def registry() -> AsyncIterator[InlineToolRegistry]:
    # Inline sessions need none of run()'s background tasks; closing is what matters here.
    running = InlineToolRegistry({})
    yield running
    await running.aclose()


async def open_tools(
    registry: InlineToolRegistry, config: ServerConfig, principal: Principal = ALICE
) -> InlineUpstream:
    """A session of `principal` on the service "tools", configured as `config`."""
    registry.services = {**registry.services, "tools": config}
    return await registry.open("tools", principal, ignore)


async def ask(upstream: InlineUpstream, method: str, params: dict[str, Any] | None = None) -> Message:
    message: Message = {"jsonrpc": "2.0", "id": "r-1", "method": method}
    if params is not None:
        message["params"] = params
    return await upstream.request(message, ignore)


async def call(
    upstream: InlineUpstream, name: str, arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await ask(upstream, "tools/call", {"name": name, "arguments": arguments or {}})
    assert response["id"] == "r-1"
    result: dict[str, Any] = response["result"]
    return result


def text(result: dict[str, Any]) -> str:
    return str(result["content"][0]["text"])


ARGV_TOOL = tool(
    "argv", {"text": STRING, "count": {"type": "integer"}}, command=sys.executable,
    args=["-c", PRINT_ARGV, "{{text}}", "{{count}}"],
)  # fmt: skip


class TestProtocol:
    @pytest.mark.parametrize(
        ("offered", "answered"),
        [("2025-06-18", "2025-06-18"), ("2024-11-05", "2024-11-05"), ("1999-01-01", "2025-11-25")],
    )
    async def test_initialize(self, registry: InlineToolRegistry, offered: str, answered: str) -> None:
        upstream = await open_tools(registry, server(ARGV_TOOL), ALICE)
        response = await ask(upstream, "initialize", {"protocolVersion": offered, "capabilities": {}})
        assert response == {
            "jsonrpc": "2.0",
            "id": "r-1",
            "result": {
                "protocolVersion": answered,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "tools", "version": response["result"]["serverInfo"]["version"]},
                "instructions": "test tools",
            },
        }

    async def test_ping_list_and_unknown_methods(self, registry: InlineToolRegistry) -> None:
        upstream = await open_tools(registry, server(ARGV_TOOL), ALICE)
        assert (await ask(upstream, "ping"))["result"] == {}
        assert (await ask(upstream, "tools/list"))["result"] == {
            "tools": [
                {
                    "name": "argv",
                    "description": "the argv tool",
                    # Undeclared arguments are refused, and the listing says so.
                    "inputSchema": {**ARGV_TOOL["inputSchema"], "additionalProperties": False},
                }
            ]
        }
        response = await ask(upstream, "resources/list")
        assert response["error"]["code"] == jsonrpc.METHOD_NOT_FOUND
        await upstream.notify({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await upstream.respond({"jsonrpc": "2.0", "id": 5, "result": {}})

    async def test_unknown_tools_and_malformed_calls_are_protocol_errors(
        self, registry: InlineToolRegistry
    ) -> None:
        upstream = await open_tools(registry, server(ARGV_TOOL), ALICE)
        response = await ask(upstream, "tools/call", {"name": "nope", "arguments": {}})
        assert response["error"] == {"code": jsonrpc.INVALID_PARAMS, "message": "Unknown tool: nope"}
        response = await ask(upstream, "tools/call", {"name": "argv", "arguments": ["x"]})
        assert response["error"]["code"] == jsonrpc.INVALID_PARAMS

    async def test_a_closed_session_refuses_requests(self, registry: InlineToolRegistry) -> None:
        upstream = await open_tools(registry, server(ARGV_TOOL), ALICE)
        assert registry.session_count == 1
        await upstream.aclose()
        assert registry.session_count == 0
        with pytest.raises(BackendError):
            await ask(upstream, "ping")


class TestCommandTools:
    async def test_arguments_reach_argv_inert(self, registry: InlineToolRegistry) -> None:
        upstream = await open_tools(registry, server(ARGV_TOOL), ALICE)
        result = await call(upstream, "argv", {"text": "; rm -rf / $(id) `id`\nx", "count": 2})
        assert result["isError"] is False
        assert json.loads(text(result)) == ["; rm -rf / $(id) `id`\nx", "2"]

    async def test_invalid_arguments_run_nothing(self, registry: InlineToolRegistry, tmp_path: Path) -> None:
        canary = tmp_path / "ran"
        touch = tool(
            "touch", {"n": {"type": "integer"}}, command=sys.executable,
            args=["-c", "import sys; open(sys.argv[1], 'w')", str(canary), "{{n}}"],
        )  # fmt: skip
        # The sandbox lets the command write there, so that the canary could show a run.
        config = server(touch, sandbox={"writablePaths": [str(tmp_path)]})
        upstream = await open_tools(registry, config, ALICE)
        result = await call(upstream, "touch", {"n": "not a number"})
        assert result["isError"] is True
        assert "the arguments of touch are not valid" in text(result)
        assert "arguments.n: 'not a number' is not of type 'integer'" in text(result)
        result = await call(upstream, "touch", {"n": -1})
        assert result["isError"] is True
        assert 'touch was not run: argument "n" starts with "-"' in text(result)
        assert not canary.exists()
        assert (await call(upstream, "touch", {"n": 1}))["isError"] is False
        assert canary.exists()

    async def test_json_output_is_structured(self, registry: InlineToolRegistry) -> None:
        emit = tool("emit", command=sys.executable, args=["-c", "print('{\"ok\": true}')"])
        upstream = await open_tools(registry, server(emit), ALICE)
        result = await call(upstream, "emit")
        assert result["structuredContent"] == {"ok": True}

    async def test_a_failure_reports_status_and_stderr_without_secrets(
        self, registry: InlineToolRegistry
    ) -> None:
        script = "import os, sys; print('bad token', os.environ['TOKEN'], file=sys.stderr); sys.exit(4)"
        fail = tool("fail", command=sys.executable, args=["-c", script], env={"TOKEN": {"$env": "TOKEN"}})
        config = with_secret(fail)
        upstream = await open_tools(registry, config, ALICE)
        result = await call(upstream, "fail")
        assert result["isError"] is True
        assert text(result) == "fail exited with status 4:\nbad token …"
        assert SECRET not in json.dumps(result)

    async def test_only_the_minimal_environment_and_the_tools_own_reach_the_command(
        self, registry: InlineToolRegistry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("GATEWAY_SIGNING_KEY", "do-not-leak")
        script = "import json, os; print(json.dumps(dict(os.environ)))"
        env_tool = tool("env", {"region": STRING}, command=sys.executable, args=["-c", script],
                        env={"REGION": "{{region}}"})  # fmt: skip
        upstream = await open_tools(registry, server(env_tool), ALICE)
        result = await call(upstream, "env", {"region": "eu"})
        environ = result["structuredContent"]
        assert environ["REGION"] == "eu"
        assert "GATEWAY_SIGNING_KEY" not in environ
        assert "PATH" in environ

    async def test_a_timeout_is_an_error_result(self, registry: InlineToolRegistry) -> None:
        slow = tool(
            "slow", command=sys.executable, args=["-c", "import time; time.sleep(30)"], timeout="0.3s"
        )
        upstream = await open_tools(registry, server(slow), ALICE)
        result = await call(upstream, "slow")
        assert result == {
            "content": [{"type": "text", "text": "slow did not finish within 0.3s and was stopped"}],
            "isError": True,
        }

    async def test_the_server_timeout_applies_when_the_tool_has_none(
        self, registry: InlineToolRegistry
    ) -> None:
        slow = tool("slow", command=sys.executable, args=["-c", "import time; time.sleep(30)"])
        upstream = await open_tools(registry, server(slow, timeout="0.2s"), ALICE)
        assert "within 0.2s" in text(await call(upstream, "slow"))

    async def test_closing_the_session_ends_its_calls(self, registry: InlineToolRegistry) -> None:
        slow = tool("slow", command=sys.executable, args=["-c", "import time; time.sleep(30)"])
        upstream = await open_tools(registry, server(slow), ALICE)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as task_group:

                async def call_and_expect_closed() -> None:
                    with pytest.raises(BackendError, match="closed during the call"):
                        await call(upstream, "slow")

                task_group.start_soon(call_and_expect_closed)
                while len(registry.groups) == 0:
                    await anyio.sleep(0.02)
                await upstream.aclose()
        assert len(registry.groups) == 0


class TestHttpTools:
    @pytest.fixture
    def seen(self) -> list[httpx2.Request]:
        return []

    @pytest.fixture
    async def mocked(self, seen: list[httpx2.Request]) -> AsyncIterator[InlineToolRegistry]:
        async def handler(request: httpx2.Request) -> httpx2.Response:
            seen.append(request)
            await request.aread()
            if request.url.path == "/redirect":
                return httpx2.Response(302, headers={"Location": "http://elsewhere.example/"})
            if request.url.path == "/fail":
                return httpx2.Response(500, text=f"internal trouble with {SECRET}")
            if request.url.path == "/slow":
                await anyio.sleep(5)
            if request.url.path == "/long-fail":
                # The last 2000 characters begin with all but the first character of the secret.
                body = "A" * 3000 + SECRET + "B" * (2000 - len(SECRET) + 1)
                return httpx2.Response(500, text=body)
            if request.url.path == "/cookie":
                return httpx2.Response(200, json={}, headers={"Set-Cookie": "session=abc; Path=/"})
            return httpx2.Response(200, json={"method": request.method, "url": str(request.url)})

        client = http_client()
        client._transport = httpx2.MockTransport(handler)
        running = InlineToolRegistry({}, client=client)
        yield running
        await running.aclose()

    async def test_get_sends_arguments_as_the_query(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request]
    ) -> None:
        search = tool("search", {"q": STRING, "n": {"type": "integer"}},
                      http={"method": "GET", "url": "https://api.example.com/search?lang=en"})  # fmt: skip
        upstream = await open_tools(mocked, server(search), ALICE)
        result = await call(upstream, "search", {"q": "a&b=c", "n": 2})
        assert result["isError"] is False
        assert result["structuredContent"]["method"] == "GET"
        assert seen[0].url.params.multi_items() == [("lang", "en"), ("q", "a&b=c"), ("n", "2")]

    async def test_post_sends_arguments_as_the_json_body(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request]
    ) -> None:
        create = tool("create", {"title": STRING, "tags": {"type": "array"}},
                      http={"url": "https://api.example.com/items"})  # fmt: skip
        upstream = await open_tools(mocked, server(create), ALICE)
        await call(upstream, "create", {"title": "x", "tags": ["a"]})
        assert json.loads(seen[0].content) == {"title": "x", "tags": ["a"]}
        assert seen[0].headers["content-type"] == "application/json"

    async def test_url_headers_and_body_templates(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request]
    ) -> None:
        update = tool(
            "update", {"id": STRING, "limit": {"type": "integer"}},
            http={
                "method": "PATCH",
                "url": "https://api.example.com/items/{{id}}",
                "headers": {"X-Item": "item-{{id}}"},
                "body": {"limit": "{{limit}}", "note": "for {{id}}"},
            },
        )  # fmt: skip
        upstream = await open_tools(mocked, server(update), ALICE)
        climbing = await call(upstream, "update", {"id": "../admin?x=1", "limit": 3})
        assert climbing["isError"] is True
        assert seen == []
        await call(upstream, "update", {"id": "a/admin?x=1", "limit": 3})
        request = seen[0]
        assert request.url.raw_path == b"/items/a%2Fadmin%3Fx%3D1"
        assert request.headers["x-item"] == "item-a/admin?x=1"
        assert json.loads(request.content) == {"limit": 3, "note": "for a/admin?x=1"}
        result = await call(upstream, "update", {"id": "a\r\nX-Admin: yes", "limit": 3})
        assert result["isError"] is True
        assert 'argument "id" contains a line break' in text(result)
        assert len(seen) == 1

    @pytest.mark.parametrize(
        ("path", "message"),
        [
            (
                "redirect",
                "https://api.example.com answered with a redirect (HTTP 302), which is not followed",
            ),
            (
                "fail",
                "https://api.example.com answered HTTP 500 Internal Server Error: internal trouble with …",
            ),
            ("slow", "the request to https://api.example.com did not finish within 0.2s"),
        ],
    )
    async def test_failures_are_error_results(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request], path: str, message: str
    ) -> None:
        authorized = {"Authorization": {"$env": "TOKEN"}}
        url = f"https://api.example.com/{path}"
        broken = tool("broken", http={"url": url, "headers": authorized}, timeout="0.2s")
        upstream = await open_tools(mocked, with_secret(broken), ALICE)
        result = await call(upstream, "broken")
        assert result == {"content": [{"type": "text", "text": message}], "isError": True}
        assert seen[0].headers["authorization"] == SECRET
        assert len(seen) == 1

    async def test_cookies_are_never_kept(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request]
    ) -> None:
        cookie = tool("cookie", http={"method": "GET", "url": "https://api.example.com/cookie"})
        upstream = await open_tools(mocked, server(cookie), ALICE)
        await call(upstream, "cookie")
        await call(upstream, "cookie")
        assert "cookie" not in seen[1].headers


class TestSecretsAtCuts:
    """A secret is redacted before output is cut, so no part of it survives the cut."""

    async def test_stdout_cut_at_the_cap(self) -> None:
        script = "import os; print('A' * 95 + os.environ['TOKEN'] + 'B' * 50)"
        echo = tool("echo", command=sys.executable, args=["-c", script], env={"TOKEN": {"$env": "TOKEN"}})
        registry = InlineToolRegistry({}, output_limit=100)
        try:
            result = await call(await open_tools(registry, with_secret(echo), ALICE), "echo")
        finally:
            await registry.aclose()
        assert result["isError"] is False
        assert text(result).startswith("A" * 95 + "…")
        assert SECRET[:5] not in json.dumps(result)
        assert result["content"][-1]["text"] == "(output truncated)"

    async def test_the_end_of_stderr(self, registry: InlineToolRegistry) -> None:
        script = (
            "import os, sys; print('token', os.environ['TOKEN'], 'for', sys.argv[1], file=sys.stderr);"
            " sys.exit(1)"
        )
        fail = tool("q", {"query": STRING}, command=sys.executable, args=["-c", script, "{{query}}"],
                    env={"TOKEN": {"$env": "TOKEN"}})  # fmt: skip
        upstream = await open_tools(registry, with_secret(fail), ALICE)
        # The last 2000 characters begin with all but the first character of the secret.
        result = await call(upstream, "q", {"query": "A" * (2000 - (len(SECRET) - 1) - len(" for "))})
        assert result["isError"] is True
        assert SECRET[1:] not in text(result)
        assert SECRET[-8:] not in text(result)

    async def test_the_end_of_an_http_error_body(self) -> None:
        async def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(500, text="A" * 3000 + SECRET + "B" * (2000 - len(SECRET) + 1))

        client = http_client()
        client._transport = httpx2.MockTransport(handler)
        registry = InlineToolRegistry({}, client=client)
        broken = tool(
            "broken", http={"url": "https://api.example.com/x", "headers": {"X-K": {"$env": "TOKEN"}}}
        )
        try:
            result = await call(await open_tools(registry, with_secret(broken), ALICE), "broken")
        finally:
            await registry.aclose()
        assert result["isError"] is True
        assert SECRET[-8:] not in text(result)

    async def test_an_http_body_cut_at_the_cap(self) -> None:
        async def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(200, text="A" * 95 + SECRET + "B" * 50)

        client = http_client()
        client._transport = httpx2.MockTransport(handler)
        try:
            request = client.build_request("GET", "https://api.example.com/x")
            result = await call_http(client, request, time_limit=5, secrets=[SECRET], response_limit=100)
        finally:
            await client.aclose()
        assert text(result).startswith("A" * 95 + "…")
        assert SECRET[:5] not in json.dumps(result)

    async def test_encoded_forms_are_redacted(self) -> None:
        secret = 'k3y/with"quote'

        async def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(
                200, json={"token": secret, "url": "https://x.example/?t=k3y%2Fwith%22quote"}
            )

        client = http_client()
        client._transport = httpx2.MockTransport(handler)
        try:
            request = client.build_request("GET", "https://api.example.com/x")
            result = await call_http(client, request, time_limit=5, secrets=[secret])
        finally:
            await client.aclose()
        assert result["structuredContent"] == {"token": "…", "url": "https://x.example/?t=…"}
        assert "k3y" not in json.dumps(result)


class TestHttpArgumentsRefused:
    @pytest.fixture
    def seen(self) -> list[httpx2.Request]:
        return []

    @pytest.fixture
    async def mocked(self, seen: list[httpx2.Request]) -> AsyncIterator[InlineToolRegistry]:
        async def handler(request: httpx2.Request) -> httpx2.Response:
            seen.append(request)
            return httpx2.Response(200, json={"url": str(request.url)})

        client = http_client()
        client._transport = httpx2.MockTransport(handler)
        running = InlineToolRegistry({}, client=client)
        yield running
        await running.aclose()

    async def test_dot_segments_are_refused(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request]
    ) -> None:
        url = "https://api.example.com/v1/repos/{{owner}}/{{name}}/issues"
        repo = tool("repo", {"owner": STRING, "name": STRING}, http={"method": "GET", "url": url})
        upstream = await open_tools(mocked, server(repo), ALICE)
        result = await call(upstream, "repo", {"owner": "..", "name": "x"})
        assert result["isError"] is True
        assert 'argument "owner" is only dots' in text(result)
        assert seen == []

    async def test_undeclared_arguments_are_refused(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request]
    ) -> None:
        url = "https://api.example.com/v1/search"
        search = tool("search", {"q": STRING}, http={"method": "POST", "url": url})
        upstream = await open_tools(mocked, server(search), ALICE)
        result = await call(upstream, "search", {"q": "x", "admin": True})
        assert result["isError"] is True
        assert "admin" in text(result)
        assert seen == []
        assert (await call(upstream, "search", {"q": "x"}))["isError"] is False
        assert len(seen) == 1

    async def test_get_arguments_cannot_replace_the_configured_query(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request]
    ) -> None:
        url = "https://api.example.com/search?scope=public&limit=10&q={{q}}"
        search = tool("search", {"q": STRING, "scope": STRING, "limit": {"type": "integer"}},
                      http={"method": "GET", "url": url})  # fmt: skip
        upstream = await open_tools(mocked, server(search), ALICE)
        result = await call(upstream, "search", {"q": "x", "scope": "admin"})
        assert result["isError"] is True
        assert 'argument "scope" would replace the query parameter "scope"' in text(result)
        assert seen == []
        result = await call(upstream, "search", {"q": "x"})
        assert result["isError"] is False
        # "q" filled its placeholder; it is not sent a second time.
        assert seen[0].url.params.multi_items() == [("scope", "public"), ("limit", "10"), ("q", "x")]

    async def test_get_arguments_used_as_placeholders_are_not_appended(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request]
    ) -> None:
        item = tool("item", {"id": STRING, "trace": STRING, "verbose": {"type": "boolean"}},
                    http={"method": "GET", "url": "https://api.example.com/items/{{id}}",
                          "headers": {"X-Trace": "{{trace}}"}})  # fmt: skip
        upstream = await open_tools(mocked, server(item), ALICE)
        await call(upstream, "item", {"id": "7", "trace": "t-1", "verbose": True})
        assert seen[0].url.path == "/items/7"
        assert seen[0].url.params.multi_items() == [("verbose", "true")]
        assert seen[0].headers["x-trace"] == "t-1"

    async def test_a_url_too_long_is_an_error_result(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request]
    ) -> None:
        fetch = tool("fetch", {"q": STRING, "n": STRING},
                     http={"method": "GET", "url": "https://api.example.com/s/{{q}}?n={{n}}"})  # fmt: skip
        upstream = await open_tools(mocked, server(fetch), ALICE)
        result = await call(upstream, "fetch", {"q": "a" * 70000, "n": "1"})
        assert result["isError"] is True
        assert 'fetch was not run: argument "q" would make the URL invalid' in text(result)
        assert seen == []

    async def test_a_long_query_argument_is_an_error_result(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request]
    ) -> None:
        search = tool("search", {"q": STRING}, http={"method": "GET", "url": "https://api.example.com/s"})
        upstream = await open_tools(mocked, server(search), ALICE)
        result = await call(upstream, "search", {"q": "a" * 70000})
        assert result["isError"] is True
        assert 'argument "q" would make the URL invalid' in text(result)
        assert seen == []

    @pytest.mark.parametrize("value", ["é€", "\x01"])
    async def test_a_header_value_outside_printable_ascii_is_an_error_result(
        self, mocked: InlineToolRegistry, seen: list[httpx2.Request], value: str
    ) -> None:
        post = tool(
            "post", {"q": STRING}, http={"url": "https://api.example.com/s", "headers": {"X-T": "{{q}}"}}
        )
        upstream = await open_tools(mocked, server(post), ALICE)
        result = await call(upstream, "post", {"q": value})
        assert result["isError"] is True
        assert 'argument "q" contains a character other than printable ASCII' in text(result)
        assert seen == []


class TestConcurrency:
    SLOW: ClassVar[dict[str, Any]] = tool(
        "slow", command=sys.executable, args=["-c", "import time; time.sleep(30)"]
    )

    async def test_calls_wait_for_a_slot_per_principal_and_in_total(self) -> None:
        registry = InlineToolRegistry({}, calls_per_principal=2, calls_in_total=3)
        alice = await open_tools(registry, server(self.SLOW), ALICE)
        alice_again = await open_tools(registry, server(self.SLOW), ALICE)
        bob = await open_tools(registry, server(self.SLOW), BOB)
        try:
            with anyio.fail_after(10):
                async with anyio.create_task_group() as task_group:
                    for upstream in (alice, alice_again) * 3:
                        task_group.start_soon(call, upstream, "slow")
                    while len(registry.groups) < 2:
                        await anyio.sleep(0.02)
                    await anyio.sleep(0.3)
                    # Both of Alice's sessions share her two slots.
                    assert len(registry.groups) == 2
                    for _ in range(3):
                        task_group.start_soon(call, bob, "slow")
                    while len(registry.groups) < 3:
                        await anyio.sleep(0.02)
                    await anyio.sleep(0.3)
                    assert len(registry.groups) == 3
                    assert registry.calls_running == 3
                    task_group.cancel_scope.cancel()
        finally:
            await registry.aclose()
        assert registry.calls_running == 0
        assert registry._per_principal == {}

    async def test_a_call_waiting_for_a_slot_ends_with_its_session(self) -> None:
        registry = InlineToolRegistry({}, calls_per_principal=1)
        upstream = await open_tools(registry, server(self.SLOW), ALICE)
        closed: list[str] = []

        async def call_and_expect_closed() -> None:
            with pytest.raises(BackendError, match="closed during the call") as raised:
                await call(upstream, "slow")
            closed.append(str(raised.value))

        try:
            with anyio.fail_after(10):
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(call_and_expect_closed)
                    task_group.start_soon(call_and_expect_closed)
                    while len(registry.groups) == 0:
                        await anyio.sleep(0.02)
                    await upstream.aclose()
        finally:
            await registry.aclose()
        assert len(closed) == 2
        assert registry.calls_running == 0
        assert len(registry.groups) == 0

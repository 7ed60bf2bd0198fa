"""2026-07-28 through the gateway to a streamable-HTTP backend that speaks it: natively, with
the era's routing headers, under the service's filter, policy and audit; and the handshake
fallback for a backend that does not."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx2
import pytest
from mcp import MCPError
from mcp.client.context import ClientRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types import ElicitRequestParams, ElicitResult
from mcp_types.jsonrpc import HEADER_MISMATCH
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.support.clients import connect, text_of
from tests.support.everything import everything_server
from tests.support.gateway import RunningGateway, bearer, running_gateway
from tests.support.net import free_port, serving
from tests.support.raw import ACCEPT

pytestmark = pytest.mark.e2e

MODERN = "2026-07-28"
LEGACY_PREFIX = "/legacy"

backend = MCPServer("modern-backend")


class Name(BaseModel):
    name: str


def ask_name() -> Elicit[Name]:
    return Elicit("Who is asking?", Name)


@backend.tool()
def where(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], text: str) -> str:
    """The backend refuses a call whose Mcp-Param-Region header does not mirror `region`."""
    return f"{region}:{text}"


@backend.tool()
def greet(name: Annotated[Name, Resolve(ask_name)]) -> str:
    """Asks the client for a name: an input_required result in 2026-07-28."""
    return f"hello {name.name}"


@backend.tool()
async def count(steps: int, ctx: Context) -> str:
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps)
    return f"counted {steps}"


@backend.tool()
def secret() -> str:
    return "the filter should have hidden me"


@backend.tool()
def admin() -> str:
    return "admin only"


@dataclass
class Backend:
    url: str
    requests: list[dict[str, str]] = field(default_factory=list)
    """Path and headers of every HTTP request the backend received."""

    @property
    def legacy_url(self) -> str:
        return self.url.replace("/mcp", f"{LEGACY_PREFIX}/mcp")

    def posts(self, path: str = "/mcp") -> list[dict[str, str]]:
        return [r for r in self.requests if r[":path"] == path and r[":method"] == "POST"]


class Recorded:
    """Records each request; under `/legacy` plays a server that predates 2026-07-28
    (a sessionless request is a 400, as the handshake era's servers answer it)."""

    def __init__(self, app: ASGIApp, backend: Backend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.backend.requests.append({":method": scope["method"], ":path": scope["path"], **headers})
        if scope["path"].startswith(LEGACY_PREFIX):
            if headers.get("mcp-protocol-version") == MODERN:
                body = (
                    b'{"jsonrpc":"2.0","id":"server-error","error":{"code":-32600,"message":"Bad Request"}}'
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            scope = {**scope, "path": scope["path"][len(LEGACY_PREFIX) :], "raw_path": None}
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def running_backend() -> AsyncIterator[Backend]:
    port = free_port()
    recorded = Backend(url=f"http://127.0.0.1:{port}/mcp")
    app = Recorded(backend.streamable_http_app(host="127.0.0.1"), recorded)
    async with serving(app, port):
        yield recorded


@pytest.fixture
async def modern_backend() -> AsyncIterator[Backend]:
    async with running_backend() as running:
        yield running


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
async def gw(modern_backend: Backend, audit_file: Path) -> AsyncIterator[RunningGateway]:
    auths = [bearer("ada-token", user="ada@example.com"), bearer("bob-token", user="bob@example.com")]
    services = {
        "native": {"transportType": "streamable-http", "url": modern_backend.url, "serviceAuths": auths},
        "governed": {
            "transportType": "streamable-http",
            "url": modern_backend.url,
            "serviceAuths": auths,
            "policy": {"tools": {"admin": {"allowedUsers": ["ada@example.com"]}}},
            "options": {"toolFilter": {"mode": "block", "list": ["secret"]}},
        },
        "legacy": {
            "transportType": "streamable-http",
            "url": modern_backend.legacy_url,
            "serviceAuths": auths,
        },
    }
    async with running_gateway(services, proxy={"audit": {"file": str(audit_file)}}) as running:
        yield running


def routing(request: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in request.items() if k.startswith("mcp-")}


async def test_requests_pass_through_natively_with_the_routing_headers(
    gw: RunningGateway, modern_backend: Backend
) -> None:
    async with connect(gw.service_url("native"), token="ada-token", mode=MODERN) as client:
        assert client.protocol_version == MODERN
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"where", "greet", "secret", "admin"} <= names
        assert text_of(await client.call_tool("where", {"region": "eu-west", "text": "hi"})) == "eu-west:hi"
        # A value no header can carry as it is travels base64-wrapped, and still matches.
        assert text_of(await client.call_tool("where", {"region": "zürich", "text": "hi"})) == "zürich:hi"

    posts = modern_backend.posts()
    assert all("mcp-session-id" not in post for post in posts)
    assert all(post["mcp-protocol-version"] == MODERN for post in posts)
    assert [post["mcp-method"] for post in posts][:2] == ["server/discover", "tools/list"]
    calls = [routing(post) for post in posts if post["mcp-method"] == "tools/call"]
    assert calls[0] == {
        "mcp-protocol-version": MODERN,
        "mcp-method": "tools/call",
        "mcp-name": "where",
        "mcp-param-region": "eu-west",
    }
    assert calls[1]["mcp-param-region"].startswith("=?base64?")


async def test_progress_comes_on_the_requests_own_stream(gw: RunningGateway) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with connect(gw.service_url("native"), token="ada-token", mode=MODERN) as client:
        result = await client.call_tool("count", {"steps": 3}, progress_callback=on_progress)
    assert text_of(result) == "counted 3"
    assert seen == [1, 2, 3]


async def test_discover_answers_with_the_backends_own_result(gw: RunningGateway) -> None:
    async with connect(gw.service_url("native"), token="ada-token", mode="auto") as client:
        assert client.protocol_version == MODERN
        assert client.server_info is not None
        assert client.server_info.name == "modern-backend"


async def test_an_input_required_result_reaches_the_client(gw: RunningGateway) -> None:
    async def elicit(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="accept", content={"name": "ada"})

    async with connect(
        gw.service_url("native"), token="ada-token", mode=MODERN, elicitation_callback=elicit
    ) as client:
        assert text_of(await client.call_tool("greet", {})) == "hello ada"


async def test_filter_policy_and_audit_hold_on_the_native_path(
    gw: RunningGateway, modern_backend: Backend, audit_file: Path
) -> None:
    url = gw.service_url("governed")
    async with connect(url, token="bob-token", mode=MODERN) as bob:
        names = {tool.name for tool in (await bob.list_tools()).tools}
        assert "secret" not in names
        assert "admin" not in names
        assert "where" in names
        with pytest.raises(MCPError, match="Unknown tool: secret"):
            await bob.call_tool("secret", {})
        with pytest.raises(MCPError) as denied:
            await bob.call_tool("admin", {})
        assert denied.value.error.code == -32003
        assert text_of(await bob.call_tool("where", {"region": "eu", "text": "ok"})) == "eu:ok"
    async with connect(url, token="ada-token", mode=MODERN) as ada:
        assert "admin" in {tool.name for tool in (await ada.list_tools()).tools}
        assert text_of(await ada.call_tool("admin", {})) == "admin only"

    posts = modern_backend.posts()
    assert all("mcp-session-id" not in post for post in posts)
    assert "secret" not in {routing(post).get("mcp-name") for post in posts}
    events = [json.loads(line) for line in audit_file.read_text().splitlines()]
    summary = [(e["principal"], e["tool"], e["outcome"]) for e in events]
    assert summary == [
        ("bob@example.com", "secret", "denied"),
        ("bob@example.com", "admin", "denied"),
        ("bob@example.com", "where", "ok"),
        ("ada@example.com", "admin", "ok"),
    ]


def modern_call(arguments: dict[str, Any]) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
    }
    params = {"name": "where", "arguments": arguments, "_meta": meta}
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}


def modern_headers(**params: str) -> dict[str, str]:
    headers = {
        "Accept": ACCEPT,
        "Authorization": "Bearer ada-token",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "where",
    }
    return headers | {f"Mcp-Param-{name}": value for name, value in params.items()}


@pytest.mark.parametrize("service", ["native", "legacy"])
@pytest.mark.parametrize(
    "params",
    [{"Region": "us-east"}, {}, {"Region": "=?base64?not base64?="}],
    ids=["different", "missing", "malformed"],
)
async def test_a_param_header_that_disagrees_with_the_body_is_a_400(
    gw: RunningGateway, modern_backend: Backend, service: str, params: dict[str, str]
) -> None:
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            gw.service_url(service),
            json=modern_call({"region": "eu-west", "text": "hi"}),
            headers=modern_headers(**params),
        )
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert error["code"] == HEADER_MISMATCH
        assert "Mcp-Param-Region" in error["message"]
        assert response.json()["id"] == 7

        agreeing = await http.post(
            gw.service_url(service),
            json=modern_call({"region": "eu-west", "text": "hi"}),
            headers=modern_headers(Region="eu-west"),
        )
        assert agreeing.status_code == 200
        assert agreeing.json()["result"]["content"][0]["text"] == "eu-west:hi"

    called = [post for post in modern_backend.requests if "tools/call" in post.get("mcp-method", "")]
    # Only the agreeing call reached the backend (the handshake era sends no routing headers).
    assert len(called) == (1 if service == "native" else 0)


async def test_a_handshake_only_backend_is_served_through_the_fallback(
    gw: RunningGateway, modern_backend: Backend
) -> None:
    async with connect(gw.service_url("legacy"), token="ada-token", mode=MODERN) as client:
        assert client.protocol_version == MODERN
        assert "where" in {tool.name for tool in (await client.list_tools()).tools}
        assert text_of(await client.call_tool("where", {"region": "eu", "text": "old"})) == "eu:old"
        assert text_of(await client.call_tool("where", {"region": "eu", "text": "again"})) == "eu:again"

    legacy = [r for r in modern_backend.requests if r[":path"].startswith(LEGACY_PREFIX)]
    probes = [r for r in legacy if r.get("mcp-protocol-version") == MODERN]
    assert [probe["mcp-method"] for probe in probes] == ["server/discover"]
    handshake = [r for r in legacy if r.get("mcp-protocol-version") != MODERN]
    assert handshake
    assert all(r.get("mcp-session-id") for r in handshake[1:] if r[":method"] == "POST")


async def test_server_everything_which_predates_the_era_is_served_through_the_fallback(
    tmp_path: Path,
) -> None:
    with everything_server("streamableHttp", tmp_path / "everything.log") as everything:
        services = {
            "everything": {
                "transportType": "streamable-http",
                "url": everything.url,
                "serviceAuths": [bearer("t")],
            }
        }
        async with (
            running_gateway(services) as running,
            connect(running.service_url("everything"), token="t", mode=MODERN) as client,
        ):
            seen: list[float] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append(progress)

            assert "get-sum" in {tool.name for tool in (await client.list_tools()).tools}
            assert text_of(await client.call_tool("echo", {"message": "modern"})) == "Echo: modern"
            await client.call_tool(
                "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
            )
            assert seen == [1, 2, 3]

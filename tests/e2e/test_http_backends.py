"""HTTP MCP servers behind the gateway: `server-everything` as a legacy-SSE backend and as a
streamable-HTTP backend, each reached over both front transports with the SDK client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest

from tests.support.clients import Transport, connect, text_of
from tests.support.everything import everything_backends
from tests.support.gateway import RunningGateway, bearer, running_gateway
from tests.support.net import free_port
from tests.support.raw import ACCEPT, initialize_message

pytestmark = pytest.mark.e2e

ENDPOINT = {"streamable-http": "mcp", "sse": "sse"}


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with everything_backends(tmp_path_factory.mktemp("everything")) as urls:
        yield urls


@pytest.fixture
async def gw(backends: dict[str, str]) -> AsyncIterator[RunningGateway]:
    services = {
        f"everything-{kind}": {"transportType": kind, "url": url, "serviceAuths": [bearer("t0k3n")]}
        for kind, url in backends.items()
    }
    services["down"] = {
        "transportType": "sse",
        "url": f"http://127.0.0.1:{free_port()}/sse",
        "serviceAuths": [bearer("t0k3n")],
    }
    async with running_gateway(services) as running:
        yield running


@pytest.mark.parametrize("backend", ["sse", "streamable-http"])
@pytest.mark.parametrize("front", ["streamable-http", "sse"])
async def test_every_backend_over_every_front_transport(
    gw: RunningGateway, backend: str, front: Transport
) -> None:
    url = gw.service_url(f"everything-{backend}", ENDPOINT[front])
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with connect(url, token="t0k3n", transport=front) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"echo", "get-sum"} <= names
        assert text_of(await client.call_tool("echo", {"message": "bridged"})) == "Echo: bridged"
        assert "5" in text_of(await client.call_tool("get-sum", {"a": 2, "b": 3}))
        result = await client.call_tool(
            "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
        )
        assert not result.is_error
        assert progress == [1, 2, 3]


async def test_a_backend_that_is_down_gets_502_with_a_json_body(gw: RunningGateway) -> None:
    async with httpx2.AsyncClient(headers={"Authorization": "Bearer t0k3n"}) as http:
        response = await http.get(gw.service_url("down", "sse"))
        assert response.status_code == 502
        assert response.json()["error"]["message"] == "service 'down' is unreachable"
        response = await http.post(
            gw.service_url("down"), json=initialize_message(), headers={"Accept": ACCEPT}
        )
        assert response.status_code == 502
        assert response.json()["error"]["message"] == "service 'down' is unreachable"

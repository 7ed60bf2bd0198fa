"""`examples/from_parts.py`: a gateway assembled in Python from its parts, with no
configuration file, run as the example says, with a real identity provider, real
streamable-HTTP and SSE servers, and the SDK's OAuth client signing in to each service."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import psutil
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.servers.conformance import REPO_ROOT, ServerProcess, running_server
from tests.support.clients import text_of
from tests.support.everything import everything_backends
from tests.support.net import free_port
from tests.support.oauth_client import Browser, MemoryTokens, oauth
from tests.support.oidc import OIDCServer, oidc_provider_process

pytestmark = pytest.mark.e2e

EXAMPLE = REPO_ROOT / "examples" / "from_parts.py"


@dataclass
class Assembled:
    url: str
    process: ServerProcess
    oidc: OIDCServer
    data: Path


def example_environment(url: str, oidc: OIDCServer, backends: dict[str, str], data: Path) -> dict[str, str]:
    client_id, client_secret = oidc.basic_client
    return dict(
        os.environ,
        MCP_FRONT_BASE_URL=url,
        OIDC_DISCOVERY_URL=oidc.discovery_url,
        OIDC_CLIENT_ID=client_id,
        OIDC_CLIENT_SECRET=client_secret,
        ALLOWED_DOMAIN="example.com",
        ENCRYPTION_KEY="k" * 32,
        SEARCH_MCP_URL=backends["streamable-http"],
        LEGACY_SSE_URL=backends["sse"],
        MCP_FRONT_DATA=str(data),
        PORT=url.rsplit(":", 1)[1],
    )


@pytest.fixture(scope="module")
def assembled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assembled]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path_factory.mktemp("assembled") / "data"
    with (
        everything_backends(tmp_path_factory.mktemp("everything")) as backends,
        oidc_provider_process(redirect_uris=[f"{url}/oauth/callback"]) as oidc,
        running_server(
            [sys.executable, str(EXAMPLE)],
            port=port,
            url=url,
            env=example_environment(url, oidc, backends, data),
            startup_timeout=90.0,
        ) as process,
    ):
        yield Assembled(url, process, oidc, data)


async def signed_in_call(url: str, tool: str, arguments: dict[str, object]) -> tuple[set[str], str]:
    """Sign in to the service at `url` as the test user, list its tools and call `tool`."""
    storage, browser = MemoryTokens(), Browser()
    provider = oauth(url, storage, browser)
    async with (
        httpx2.AsyncClient(auth=provider, timeout=60.0) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        names = {tool.name for tool in (await client.list_tools()).tools}
        result = text_of(await client.call_tool(tool, arguments))
    assert browser.approvals == 1
    return names, result


async def test_each_kind_of_backend_serves_a_signed_in_user(assembled: Assembled) -> None:
    names, whoami = await signed_in_call(f"{assembled.url}/notes/mcp", "whoami", {})
    assert {"echo", "whoami"} <= names
    assert whoami == "ada@example.com"  # the user's own process, told who it serves

    for service in ("search", "legacy"):
        names, echoed = await signed_in_call(f"{assembled.url}/{service}/mcp", "echo", {"message": service})
        assert echoed == f"Echo: {service}"

    names, date = await signed_in_call(f"{assembled.url}/clock/mcp", "utc_date", {})
    assert names == {"utc_date"}
    assert len(date.strip()) == len("2026-12-05")

    names, echoed = await signed_in_call(f"{assembled.url}/everything/mcp", "notes.echo", {"text": "both"})
    assert {"notes.whoami", "clock.utc_date"} <= names
    assert echoed == "both"


async def test_a_token_for_one_service_is_refused_by_another(assembled: Assembled) -> None:
    storage, browser = MemoryTokens(), Browser()
    provider = oauth(f"{assembled.url}/clock/mcp", storage, browser)
    async with httpx2.AsyncClient(auth=provider, timeout=60.0) as http:
        assert (await http.post(f"{assembled.url}/clock/mcp", json={})).status_code != 401
    assert storage.tokens is not None
    async with httpx2.AsyncClient(timeout=30.0) as http:
        response = await http.post(
            f"{assembled.url}/notes/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {storage.tokens.access_token}"},
        )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_the_signing_key_is_kept_private_and_out_of_the_childrens_sight(assembled: Assembled) -> None:
    key = assembled.data / "signing-key.pem"
    assert key.read_text().startswith("-----BEGIN")
    assert key.stat().st_mode & 0o077 == 0
    url = f"{assembled.url}/notes/mcp"
    storage, browser = MemoryTokens(), Browser()
    async with (
        httpx2.AsyncClient(auth=oauth(url, storage, browser), timeout=60.0) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        assert text_of(await client.call_tool("whoami", {})) == "ada@example.com"
        gateway = psutil.Process(assembled.process.process.pid)
        sandboxes = [child.cmdline() for child in gateway.children() if child.name() == "bwrap"]
        assert sandboxes, "the user's process runs in a sandbox"
        for argv in sandboxes:
            # The data folder (the signing key, the store) is an empty stand-in inside.
            assert any(argv[i : i + 2] == ["--tmpfs", str(assembled.data)] for i in range(len(argv)))

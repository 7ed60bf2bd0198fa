"""A hosted MCP server protected by its own OAuth authorization server (an SDK server with
dynamic client registration, `tests/servers/hosted_mcp_server.py`), connected through
`userAuthentication.type: "mcp-oauth"`: the gateway discovers the server from its 401,
registers itself, and each user connects their own account."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest

from mcp_front.credentials.mcp_oauth import UPSTREAM_CLIENTS_NAMESPACE
from tests.servers.conformance import running_server
from tests.support.clients import connect, text_of
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.net import free_port
from tests.support.oidc import TEST_USER, OIDCServer, gateway_auth_config
from tests.support.pages import csrf_of, follow
from tests.support.sign_in import register, sign_in

pytestmark = pytest.mark.e2e

HOSTED_SERVER = [sys.executable, "tests/servers/hosted_mcp_server.py"]


@pytest.fixture(scope="module")
def hosted() -> Iterator[str]:
    hosted_port = free_port()
    url = f"http://127.0.0.1:{hosted_port}"
    with running_server(
        [*HOSTED_SERVER, str(hosted_port)],
        port=hosted_port,
        url=f"{url}/.well-known/oauth-authorization-server",
    ):
        yield f"{url}/mcp"


def hosted_service(url: str) -> dict[str, Any]:
    return {
        "transportType": "streamable-http",
        "url": url,
        "requiresUserToken": True,
        "userAuthentication": {"type": "mcp-oauth", "displayName": "Hosted"},
        "headers": {"Authorization": {"$userToken": "Bearer {{token}}"}},
    }


@pytest.fixture
async def gw(port: int, oidc: OIDCServer, hosted: str) -> AsyncIterator[RunningGateway]:
    auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc)
    async with running_gateway(
        {"hosted": hosted_service(hosted)}, proxy={"auth": auth}, port=port
    ) as running:
        yield running


async def test_a_user_connects_a_hosted_oauth_protected_server_and_calls_it_as_themselves(
    gw: RunningGateway, oidc: OIDCServer, hosted: str
) -> None:
    await oidc.sign_in_as(TEST_USER)
    async with httpx2.AsyncClient(timeout=30) as http:
        page = await follow(http, await http.get(f"{gw.url}/my/tokens"))
        assert "Connect Hosted" in page.text
        started = await http.post(
            f"{gw.url}/my/tokens/hosted/connect", data={"csrf_token": csrf_of(page.text)}
        )
        assert started.status_code == 303
        location = started.headers["location"]
        hosted_origin = hosted.removesuffix("/mcp")
        assert location.startswith(f"{hosted_origin}/authorize?")
        assert f"resource={httpx2.URL(hosted)}".replace(":", "%3A").replace("/", "%2F") in location
        assert "code_challenge_method=S256" in location
        done = await follow(http, started)
        assert "Connected. Your applications use it" in done.text

    vault = gw.gateway.vault
    assert vault is not None
    credential = await vault.get(f"user:{TEST_USER['sub']}", "hosted")
    assert credential is not None
    assert credential.kind == "oauth"
    assert credential.refresh_token
    store = gw.gateway.authorization_server.store  # type: ignore[union-attr]
    registrations = await store.scan(UPSTREAM_CLIENTS_NAMESPACE)
    assert len(registrations) == 1  # one registration for the issuer, sealed
    assert b"client_secret" not in registrations[0][1]

    client = (await register(gw.url)).json()
    access = (await sign_in(gw.url, client["client_id"], f"{gw.url}/hosted"))["access_token"]
    async with connect(f"{gw.url}/hosted/mcp", token=access) as mcp:
        assert text_of(await mcp.call_tool("whoami", {})) == credential.access_token


async def test_the_gateways_client_metadata_document_names_every_callback(gw: RunningGateway) -> None:
    async with httpx2.AsyncClient() as http:
        document = (await http.get(f"{gw.url}/oauth/client-metadata.json")).json()
    assert document["client_id"] == f"{gw.url}/oauth/client-metadata.json"
    assert document["redirect_uris"] == [f"{gw.url}/oauth/callback/hosted"]
    assert document["token_endpoint_auth_method"] == "none"

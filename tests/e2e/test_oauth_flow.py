"""The whole OAuth flow end to end: the SDK's OAuthClientProvider against the gateway as a
real process, a real OpenID Provider as the upstream identity provider, a stdio service.

Discovery, registration, authorize, sign-in, consent, token, MCP calls over both front
transports, then refresh, revocation, and a token for one service refused by another.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.servers.conformance import ServerProcess
from tests.support.clients import text_of
from tests.support.gateway import SERVERS
from tests.support.net import free_port
from tests.support.oauth_client import CLIENT_REDIRECT, Browser, MemoryTokens, oauth
from tests.support.oidc import OIDCServer, gateway_auth_config, oidc_provider_process
from tests.support.process import gateway_process_on
from tests.support.tls import DocumentServer, make_tls, serving_documents

pytestmark = pytest.mark.e2e


@dataclass
class Gateway:
    url: str
    process: ServerProcess
    oidc: OIDCServer
    documents: DocumentServer


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tls = make_tls(tmp_path_factory.mktemp("tls"))
    documents = DocumentServer(free_port())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    callback = f"{url}/oauth/callback"
    probe = {"transportType": "stdio", "command": sys.executable, "args": [str(SERVERS / "probe_server.py")]}
    with oidc_provider_process(redirect_uris=[callback]) as oidc:
        auth = gateway_auth_config(url, oidc, allowPrivateClientMetadataHosts=True)
        directory = tmp_path_factory.mktemp("oauth-gateway")
        services = {"probe": probe, "other": probe}
        # The gateway trusts the test CA, as it would a corporate one named by SSL_CERT_FILE.
        env = dict(os.environ, SSL_CERT_FILE=str(tls.ca_file))
        with (
            serving_documents(tls, documents),
            gateway_process_on(port, directory, services, env=env, auth=auth) as process,
        ):
            yield Gateway(url, process, oidc, documents)


async def call_through(url: str, provider: OAuthClientProvider, transport: str) -> dict[str, Any]:
    async with httpx2.AsyncClient(auth=provider, timeout=30.0) as http:
        connection = (
            sse_client(url, auth=provider)
            if transport == "sse"
            else streamable_http_client(url, http_client=http)
        )
        async with Client(connection, mode="legacy") as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            echoed = text_of(await client.call_tool("echo", {"text": "signed in"}))
            return {"tools": tools, "echo": echoed}


async def test_sign_in_then_call_tools_over_both_transports(gateway: Gateway) -> None:
    storage, browser = MemoryTokens(), Browser()
    provider = oauth(f"{gateway.url}/probe/mcp", storage, browser)
    outcome = await call_through(f"{gateway.url}/probe/mcp", provider, "streamable-http")
    assert outcome["echo"] == "signed in"
    assert browser.approvals == 1
    assert storage.tokens is not None
    assert storage.tokens.refresh_token
    # The same token works on the SSE transport of the same service, without a new sign-in.
    outcome = await call_through(f"{gateway.url}/probe/sse", provider, "sse")
    assert outcome["echo"] == "signed in"
    assert browser.approvals == 1


async def test_sign_in_with_a_client_metadata_document(gateway: Gateway) -> None:
    url = gateway.documents.url("/clients/e2e.json")
    gateway.documents.serve_document(
        "/clients/e2e.json",
        {
            "client_id": url,
            "client_name": "e2e metadata-document client",
            "redirect_uris": [CLIENT_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
        headers={"Cache-Control": "max-age=300"},
    )
    storage, browser = MemoryTokens(), Browser()
    provider = oauth(f"{gateway.url}/probe/mcp", storage, browser, metadata_url=url)
    outcome = await call_through(f"{gateway.url}/probe/mcp", provider, "streamable-http")
    assert outcome["echo"] == "signed in"
    assert storage.client is not None
    assert storage.client.client_id == url
    assert browser.approvals == 1
    assert gateway.documents.hits["/clients/e2e.json"] >= 1
    # The consent page shows where the browser goes back and where the client describes
    # itself, and warns because the two hosts differ.
    [page] = browser.pages
    document_host = urlsplit(url).netloc
    assert re.search(r"<dt>Sends you back to</dt><dd><strong>127\.0\.0\.1:3999</strong></dd>", page)
    assert f"<dt>Described at</dt><dd>{document_host}</dd>" in page
    assert re.search(
        rf'class="warning" role="alert">.*{re.escape(document_host)}.*127\.0\.0\.1:3999', page, re.S
    )


async def test_a_token_for_one_service_is_refused_by_another(gateway: Gateway) -> None:
    storage, browser = MemoryTokens(), Browser()
    await call_through(f"{gateway.url}/probe/mcp", oauth(f"{gateway.url}/probe/mcp", storage, browser), "mcp")
    assert storage.tokens is not None
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{gateway.url}/other/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Authorization": f"Bearer {storage.tokens.access_token}", "Accept": "application/json"},
        )
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f'resource_metadata="{gateway.url}/.well-known/oauth-protected-resource/other/mcp"' in challenge


async def test_refresh_rotates_and_revocation_ends_the_family(gateway: Gateway) -> None:
    storage, browser = MemoryTokens(), Browser()
    await call_through(f"{gateway.url}/probe/mcp", oauth(f"{gateway.url}/probe/mcp", storage, browser), "mcp")
    assert storage.tokens is not None
    assert storage.client is not None
    first_refresh = storage.tokens.refresh_token
    async with httpx2.AsyncClient() as http:
        refreshed = await http.post(
            f"{gateway.url}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first_refresh,
                "client_id": storage.client.client_id,
                "resource": f"{gateway.url}/probe",
            },
        )
        assert refreshed.status_code == 200, refreshed.text
        second = refreshed.json()
        assert second["refresh_token"] != first_refresh
        assert refreshed.headers["cache-control"] == "no-store"
        revoked = await http.post(
            f"{gateway.url}/revoke",
            data={"token": second["refresh_token"], "client_id": storage.client.client_id},
        )
        assert revoked.status_code == 200
        again = await http.post(
            f"{gateway.url}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": second["refresh_token"],
                "client_id": storage.client.client_id,
            },
        )
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"


async def test_discovery_documents(gateway: Gateway) -> None:
    async with httpx2.AsyncClient() as http:
        metadata = (await http.get(f"{gateway.url}/.well-known/oauth-authorization-server")).json()
        assert metadata["issuer"] == gateway.url
        assert metadata["code_challenge_methods_supported"] == ["S256"]
        resource = (await http.get(f"{gateway.url}/.well-known/oauth-protected-resource/probe/mcp")).json()
        assert resource["resource"] == f"{gateway.url}/probe/mcp"
        assert resource["authorization_servers"] == [gateway.url]
        jwks = (await http.get(f"{gateway.url}/.well-known/jwks.json")).json()
        assert jwks["keys"]
        assert all("d" not in key for key in jwks["keys"])
        missing = await http.get(f"{gateway.url}/.well-known/oauth-protected-resource/nope")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/json"


def test_the_log_has_no_secret(gateway: Gateway) -> None:
    log = Path(gateway.process.log_path).read_text()
    for secret in (gateway.oidc.basic_client[1], "k" * 32):
        assert secret not in log

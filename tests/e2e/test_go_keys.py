"""The Go mcp-front's keys doing what it documents, black box: gateway processes on loopback
with a real OpenID Provider."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.support.clients import connect, text_of
from tests.support.gateway import SERVERS
from tests.support.net import free_port
from tests.support.oidc import OIDCServer, gateway_auth_config, oidc_provider_process
from tests.support.process import gateway_process_on
from tests.support.sign_in import LOOPBACK_REDIRECT, pkce, register, sign_in

pytestmark = pytest.mark.e2e

PROBE = {"transportType": "stdio", "command": sys.executable, "args": [str(SERVERS / "probe_server.py")]}


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def oidc(port: int) -> Iterator[OIDCServer]:
    with oidc_provider_process(redirect_uris=[f"http://127.0.0.1:{port}/oauth/callback"]) as server:
        yield server


def run(port: int, directory: Path, oidc: OIDCServer, **auth: Any) -> Any:
    url = f"http://127.0.0.1:{port}"
    config = gateway_auth_config(url, oidc, **auth)
    return gateway_process_on(port, directory, {"probe": PROBE}, auth=config)


async def test_refresh_tokens_only_for_the_refresh_token_scopes(
    port: int, oidc: OIDCServer, tmp_path: Path
) -> None:
    with run(port, tmp_path, oidc, refreshTokenScopes=["offline_access"]) as gateway:
        client_id = (await register(gateway.url)).json()["client_id"]
        resource = f"{gateway.url}/probe/mcp"
        without = await sign_in(gateway.url, client_id, resource)
        assert "refresh_token" not in without
        assert without["access_token"]
        offline = await sign_in(gateway.url, client_id, resource, scope="mcp offline_access")
        assert offline["refresh_token"]
        assert offline["scope"] == "mcp offline_access"


async def test_allowed_redirect_uri_hosts_gate_registration_and_authorization(
    port: int, oidc: OIDCServer, tmp_path: Path
) -> None:
    storage = {"kind": "sqlite", "path": str(tmp_path / "state.sqlite3")}
    # A client registered while any host was allowed...
    with run(port, tmp_path, oidc, storage=storage) as gateway:
        early = await register(gateway.url, redirect_uris=["https://elsewhere.example/cb"])
        assert early.status_code == 201
    # ...is refused once the list is set, at /authorize; registration follows the list.
    hosts = ["https://claude.ai"]
    with run(port, tmp_path, oidc, storage=storage, allowedRedirectUriHosts=hosts) as gateway:
        refused = await register(gateway.url, redirect_uris=["https://elsewhere.example/cb"])
        assert refused.status_code == 400
        assert "allowedRedirectUriHosts" in refused.json()["error_description"]
        assert (
            await register(gateway.url, redirect_uris=["https://claude.ai/api/mcp/auth_callback"])
        ).status_code == 201
        assert (await register(gateway.url, redirect_uris=[LOOPBACK_REDIRECT])).status_code == 201
        _, challenge = pkce()
        async with httpx2.AsyncClient(timeout=30) as http:
            response = await http.get(
                f"{gateway.url}/authorize",
                params={
                    "response_type": "code",
                    "client_id": early.json()["client_id"],
                    "redirect_uri": "https://elsewhere.example/cb",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                    "resource": f"{gateway.url}/probe/mcp",
                },
            )
        assert response.status_code == 403
        assert "location" not in response.headers


async def test_a_service_credentials_user_token_is_its_callers_credential(
    port: int, oidc: OIDCServer, tmp_path: Path
) -> None:
    service = {
        **PROBE,
        "env": {"SERVICE_TOKEN": {"$userToken": "Bearer {{token}}"}},
        "requiresUserToken": True,
        "userAuthentication": {"type": "manual", "displayName": "Probe", "instructions": "Paste your key"},
        "serviceAuths": [{"type": "bearer", "tokens": ["ci-token"], "name": "ci", "userToken": "ci-own-key"}],
    }
    url = f"http://127.0.0.1:{port}"
    auth = gateway_auth_config(url, oidc)
    with gateway_process_on(port, tmp_path, {"probe": service}, auth=auth) as gateway:
        async with connect(f"{gateway.url}/probe/mcp", token="ci-token") as client:
            result = await client.call_tool("env", {"name": "SERVICE_TOKEN"})
            assert text_of(result) == "Bearer ci-own-key"
        assert "ci-own-key" not in gateway.log()

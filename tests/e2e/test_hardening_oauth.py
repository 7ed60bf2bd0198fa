"""The authorization server under attack and under strict clients, black box: a gateway
process signing users in through a real OpenID Provider, and plain HTTP.

Each test shows an attack failing and the legitimate use still working.
"""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape

import anyio
import httpx2
import pytest

from tests.servers.conformance import ServerProcess
from tests.support.gateway import SERVERS
from tests.support.net import free_port
from tests.support.oidc import OIDCServer, gateway_auth_config, oidc_provider_process
from tests.support.process import gateway_process_on
from tests.support.sign_in import LOOPBACK_REDIRECT, pkce, query_of, register, sign_in

pytestmark = pytest.mark.e2e

PROBE = {"transportType": "stdio", "command": sys.executable, "args": [str(SERVERS / "probe_server.py")]}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


@dataclass
class Gateway:
    url: str
    process: ServerProcess
    oidc: OIDCServer

    def log(self) -> str:
        return self.process.log()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with oidc_provider_process(redirect_uris=[f"{url}/oauth/callback"]) as oidc:
        auth = gateway_auth_config(url, oidc, tokenTtl="10m")
        directory = tmp_path_factory.mktemp("hardening-oauth")
        with gateway_process_on(port, directory, {"probe": PROBE, "other": PROBE}, auth=auth) as process:
            yield Gateway(url, process, oidc)


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def revoke_as(gateway: Gateway, client_id: str, secret: str) -> int:
    """The status of a /revoke that authenticates as the client: 200 only with its secret."""
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{gateway.url}/revoke", data={"token": "x"}, headers=basic(client_id, secret)
        )
    return response.status_code


async def test_registering_a_confidential_client_again_mints_no_secret_for_it(gateway: Gateway) -> None:
    metadata = {"client_name": "Nightly export", "token_endpoint_auth_method": "client_secret_basic"}
    first = (await register(gateway.url, **metadata)).json()
    for _ in range(6):
        again = await register(gateway.url, **metadata)
        assert again.status_code == 201
        body = again.json()
        assert body["client_id"] != first["client_id"]
        assert await revoke_as(gateway, first["client_id"], body["client_secret"]) == 401
    assert await revoke_as(gateway, first["client_id"], first["client_secret"]) == 200
    # A public client is still found again, as Claude expects on every connect.
    public = (await register(gateway.url, client_name="Claude-like")).json()
    assert (await register(gateway.url, client_name="Claude-like")).json()["client_id"] == public["client_id"]


async def authorize(gateway: Gateway, client_id: str, **change: str | None) -> httpx2.Response:
    _, challenge = pkce()
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": LOOPBACK_REDIRECT,
        "state": "st",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": f"{gateway.url}/probe/mcp",
        **change,
    }
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.get(f"{gateway.url}/authorize", params={k: v for k, v in params.items() if v})


@pytest.fixture
async def client_id(gateway: Gateway) -> str:
    response = await register(gateway.url)
    assert response.status_code == 201
    client: str = response.json()["client_id"]
    return client


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge": None}, "invalid_request"),
        ({"resource": "https://elsewhere.example/probe"}, "invalid_target"),
    ],
)
async def test_an_untrusted_clients_bad_request_is_a_page_not_a_redirect(
    gateway: Gateway, client_id: str, change: dict[str, str | None], error: str
) -> None:
    response = await authorize(gateway, client_id, **change)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    [link] = re.findall(r'<a href="([^"]+)"', response.text)
    assert query_of(unescape(link))["error"] == error
    assert "Return to 127.0.0.1:3999" in response.text


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://evil@127.0.0.1:3999/callback",
        "http://127.0.0.1:3999/x/../callback",
        "http://127.1:3999/callback",
        "http://localhost:3999/callback",
        "http://127.0.0.1:3999/callback/",
        "http://127.0.0.1:3999/Callback",
    ],
)
async def test_redirect_uris_match_exactly_with_only_the_loopback_port_free(
    gateway: Gateway, client_id: str, redirect_uri: str
) -> None:
    refused = await authorize(gateway, client_id, redirect_uri=redirect_uri)
    assert refused.status_code == 400
    assert "location" not in refused.headers
    assert "did not register" in refused.text
    other_port = await authorize(gateway, client_id, redirect_uri="http://127.0.0.1:4123/callback")
    assert other_port.status_code == 302
    assert other_port.headers["location"].startswith(gateway.oidc.issuer)


@pytest.mark.parametrize(
    ("redirect_uri", "status", "reason"),
    [
        ("claude://callback", 400, "reverse domain"),
        ("myapp://cb", 400, "reverse domain"),
        ("http://LOCALHOST:5/cb", 400, "normal form"),
        ("https://app.example.com:443/cb", 400, "normal form"),
        ("com.example.app:/oauth/cb", 201, None),
        ("cursor://anysphere.cursor-mcp/oauth/callback", 201, None),
    ],
)
async def test_private_use_schemes_are_an_allow_rule(
    gateway: Gateway, redirect_uri: str, status: int, reason: str | None
) -> None:
    response = await register(gateway.url, redirect_uris=[redirect_uri], client_name=f"app {redirect_uri}")
    assert response.status_code == status, response.text
    if reason is not None:
        assert response.json()["error"] == "invalid_redirect_uri"
        assert reason in response.json()["error_description"]


async def test_a_client_name_with_control_or_bidi_characters_is_refused(gateway: Gateway) -> None:
    for name in ("Claude\nINFO mcp_front.auth: client admin registered", "Setup\u202eexe.txt"):
        response = await register(gateway.url, client_name=name)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_client_metadata"


async def test_a_forged_log_line_never_reaches_the_log(gateway: Gateway) -> None:
    forged = "FORGED-LINE-4711 INFO mcp_front.auth: user root signed in"
    async with httpx2.AsyncClient(timeout=30) as http:
        await http.get(f"{gateway.url}/probe%0A{forged.replace(' ', '%20')}")
        await http.get(f"{gateway.url}/nothing%E2%80%AE")
    for _ in range(50):
        if "FORGED-LINE-4711" in gateway.log():
            break
        await anyio.sleep(0.1)
    lines = gateway.log().splitlines()
    assert any("FORGED-LINE-4711" in line for line in lines)
    assert not any(line.startswith("FORGED-LINE-4711") for line in lines)
    assert "\u202e" not in gateway.log()


async def status_with(gateway: Gateway, token: str, service: str = "probe") -> int:
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{gateway.url}/{service}/mcp",
            json=LIST_TOOLS,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
        )
    return response.status_code


async def refused_within(gateway: Gateway, token: str, seconds: float = 20.0) -> bool:
    with anyio.move_on_after(seconds):
        while await status_with(gateway, token) != 401:
            await anyio.sleep(0.5)
        return True
    return False


async def test_revoking_a_refresh_token_revokes_the_access_tokens_of_its_family(
    gateway: Gateway, client_id: str
) -> None:
    tokens = await sign_in(gateway.url, client_id, f"{gateway.url}/probe/mcp")
    assert await status_with(gateway, tokens["access_token"]) != 401
    async with httpx2.AsyncClient(timeout=30) as http:
        refreshed = await http.post(
            f"{gateway.url}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": client_id,
            },
        )
        assert refreshed.status_code == 200
        second = refreshed.json()
        assert await status_with(gateway, second["access_token"]) != 401
        revoked = await http.post(
            f"{gateway.url}/revoke", data={"token": second["refresh_token"], "client_id": client_id}
        )
        assert revoked.status_code == 200
    # Both access tokens of the family stop working, the one issued with the code included.
    assert await refused_within(gateway, second["access_token"])
    assert await refused_within(gateway, tokens["access_token"])


async def test_reusing_a_rotated_refresh_token_revokes_the_familys_access_tokens(
    gateway: Gateway, client_id: str
) -> None:
    tokens = await sign_in(gateway.url, client_id, f"{gateway.url}/probe/mcp")
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id}
    async with httpx2.AsyncClient(timeout=30) as http:
        current = (await http.post(f"{gateway.url}/token", data=form)).json()
        await anyio.sleep(11)  # past the grace in which a retry gets the same successor
        stolen = await http.post(f"{gateway.url}/token", data=form)
        assert stolen.status_code == 400
        assert stolen.json()["error"] == "invalid_grant"
    assert await refused_within(gateway, current["access_token"])


async def test_a_401_names_the_metadata_of_exactly_the_url_connected_to(gateway: Gateway) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        for endpoint in ("mcp", "sse"):
            url = f"{gateway.url}/probe/{endpoint}"
            response = await http.request("GET" if endpoint == "sse" else "POST", url, json=LIST_TOOLS)
            assert response.status_code == 401
            challenge = response.headers["www-authenticate"]
            metadata_url = re.search(r'resource_metadata="([^"]+)"', challenge)
            assert metadata_url is not None
            assert metadata_url[1] == f"{gateway.url}/.well-known/oauth-protected-resource/probe/{endpoint}"
            document = (await http.get(metadata_url[1])).json()
            assert document["resource"] == url
            assert document["authorization_servers"] == [gateway.url]


@pytest.mark.parametrize("resource", ["probe", "probe/mcp", "probe/sse"])
async def test_a_token_for_any_url_of_a_service_is_good_on_all_of_it_and_nothing_else(
    gateway: Gateway, client_id: str, resource: str
) -> None:
    tokens = await sign_in(gateway.url, client_id, f"{gateway.url}/{resource}")
    token = tokens["access_token"]
    assert await status_with(gateway, token, "probe") != 401
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        http.stream("GET", f"{gateway.url}/probe/sse", headers={"Authorization": f"Bearer {token}"}) as sse,
    ):
        assert sse.status_code == 200
    assert await status_with(gateway, token, "other") == 401


def test_the_log_names_no_secret(gateway: Gateway) -> None:
    log = gateway.log()
    assert "k" * 32 not in log
    assert gateway.oidc.basic_client[1] not in log

"""OAuth connections: a user connects a service whose OAuth provider is a real `oidc-provider`
(rotating refresh tokens, short-lived access tokens); the user's backend gets the token,
renewals happen once however many calls need them, and disconnecting revokes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urljoin

import anyio
import httpx2
import pytest

from mcp_front.credentials import Credential
from tests.e2e.test_shared_stores import storage  # noqa: F401 - a fixture
from tests.support.clients import connect, text_of
from tests.support.gateway import RunningGateway, running_gateway, stdio_service
from tests.support.net import free_port
from tests.support.oidc import TEST_USER, OIDCServer, gateway_auth_config, oidc_provider_process
from tests.support.pages import csrf_of, follow
from tests.support.sign_in import register, sign_in

pytestmark = pytest.mark.e2e

ACCESS_TOKEN_TTL = 20
REFRESH_MARGIN = 10.0
"""Half the token's life: a busy machine has ten seconds of slack either side."""


@pytest.fixture(scope="module")
def linear_idp(port: int) -> Iterator[OIDCServer]:
    """The service's own OAuth provider."""
    with oidc_provider_process(
        redirect_uris=[f"http://127.0.0.1:{port}/oauth/callback/linear"],
        service=True,
        access_token_ttl=ACCESS_TOKEN_TTL,
    ) as server:
        yield server


def linear_service(provider: OIDCServer) -> dict[str, Any]:
    client_id, client_secret = provider.basic_client
    return stdio_service(
        requiresUserToken=True,
        userAuthentication={
            "type": "oauth",
            "displayName": "Linear",
            "clientId": client_id,
            "clientSecret": client_secret,
            "authorizationUrl": provider.authorization_url,
            "tokenUrl": provider.token_url,
            "revocationUrl": provider.revocation_url,
            "scopes": ["openid", "email"],
        },
        env={"LINEAR_TOKEN": {"$userToken": "Bearer {{token}}"}},
    )


@pytest.fixture
async def gw(port: int, oidc: OIDCServer, linear_idp: OIDCServer) -> AsyncIterator[RunningGateway]:
    auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc)
    async with running_gateway(
        {"linear": linear_service(linear_idp)}, proxy={"auth": auth}, port=port
    ) as running:
        yield running


async def connect_linear(
    gw: RunningGateway, oidc: OIDCServer, linear_idp: OIDCServer, http: httpx2.AsyncClient
) -> httpx2.Response:
    await oidc.sign_in_as(TEST_USER)
    page = await follow(http, await http.get(f"{gw.url}/my/tokens"))
    assert "Connect Linear" in page.text
    started = await http.post(f"{gw.url}/my/tokens/linear/connect", data={"csrf_token": csrf_of(page.text)})
    assert started.status_code == 303
    location = started.headers["location"]
    assert location.startswith(linear_idp.authorization_url + "?")
    assert "code_challenge_method=S256" in location
    return await follow(http, started)


async def stored(gw: RunningGateway) -> Credential:
    account = gw.gateway.account
    assert account is not None
    vault = gw.gateway.vault
    assert vault is not None
    loaded = await vault.load(f"user:{TEST_USER['sub']}", "linear", fresh=True)
    assert loaded is not None
    return loaded.credential


async def access_token(gw: RunningGateway) -> str:
    client = (await register(gw.url)).json()
    tokens = await sign_in(gw.url, client["client_id"], f"{gw.url}/linear")
    return str(tokens["access_token"])


async def test_connect_use_renew_once_and_disconnect(
    gw: RunningGateway, oidc: OIDCServer, linear_idp: OIDCServer
) -> None:
    before = await linear_idp.stats()
    account = gw.gateway.account
    assert account is not None
    account.connections.refresh_margin = REFRESH_MARGIN
    async with httpx2.AsyncClient(timeout=30) as http:
        page = await connect_linear(gw, oidc, linear_idp, http)
        assert page.status_code == 200
        assert "Connected. Your applications use it from their next request." in page.text
        credential = await stored(gw)
        assert credential.kind == "oauth"
        assert credential.refresh_token
        assert credential.expires_at is not None
        assert credential.access_token not in page.text
        assert (await linear_idp.stats())["authorization_code"] == before["authorization_code"] + 1

        token = await access_token(gw)
        async with connect(f"{gw.url}/linear/mcp", token=token) as client:
            seen = text_of(await client.call_tool("env", {"name": "LINEAR_TOKEN"}))
            assert seen == f"Bearer {credential.access_token}"

            # Wait until the token is within the margin: ten calls at once then need it
            # renewed, and exactly one renewal happens.
            await anyio.sleep(max(0.0, credential.expires_at - REFRESH_MARGIN - time.time()) + 0.3)
            refreshes = (await linear_idp.stats())["refresh_token"]
            results: list[str] = []

            async def call() -> None:
                results.append(text_of(await client.call_tool("env", {"name": "LINEAR_TOKEN"})))

            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(call)
            assert (await linear_idp.stats())["refresh_token"] == refreshes + 1
            renewed = await stored(gw)
            assert renewed.access_token != credential.access_token
            assert renewed.refresh_token != credential.refresh_token  # rotated, and kept
            # A process holds the token it was started with (its environment cannot change):
            # busy, it keeps the old one, still valid for a moment; the next request starts
            # it over with the renewed one, the client none the wiser.
            assert len(results) == 10
            assert set(results) <= {f"Bearer {credential.access_token}", f"Bearer {renewed.access_token}"}
            seen = text_of(await client.call_tool("env", {"name": "LINEAR_TOKEN"}))
            assert seen == f"Bearer {renewed.access_token}"

        page = await follow(http, await http.get(f"{gw.url}/my/tokens"))
        revocations = (await linear_idp.stats())["revocations"]
        out = await http.post(
            f"{gw.url}/my/tokens/linear/disconnect", data={"csrf_token": csrf_of(page.text)}
        )
        assert out.status_code == 303
        assert (await linear_idp.stats())["revocations"] == revocations + 2
        vault = gw.gateway.vault
        assert vault is not None
        assert await vault.load(f"user:{TEST_USER['sub']}", "linear", fresh=True) is None


async def test_a_refused_renewal_marks_the_connection_expired(
    gw: RunningGateway, oidc: OIDCServer, linear_idp: OIDCServer
) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        await connect_linear(gw, oidc, linear_idp, http)
    credential = await stored(gw)
    vault = gw.gateway.vault
    assert vault is not None
    # The provider forgets the grant (as after a password change): the refresh token is refused.
    loaded = await vault.load(f"user:{TEST_USER['sub']}", "linear", fresh=True)
    assert loaded is not None
    forgotten = replace(credential, refresh_token="revoked-by-the-provider", expires_at=0.0)
    await vault.swap(f"user:{TEST_USER['sub']}", loaded, forgotten)
    token = await access_token(gw)
    async with connect(f"{gw.url}/linear/mcp", token=token) as client:
        result = await client.call_tool("env", {"name": "LINEAR_TOKEN"})
        assert result.is_error
        assert "Linear is not connected for you yet" in text_of(result)
    after = await stored(gw)
    assert after.state == "expired"
    assert after.problem == "The service no longer accepts this connection: reconnect it."
    async with httpx2.AsyncClient(timeout=30) as http:
        await oidc.sign_in_as(TEST_USER)
        page = await follow(http, await http.get(f"{gw.url}/my/tokens"))
        assert "Expired: reconnect" in page.text
        assert "Reconnect Linear" in page.text


async def test_a_callback_from_another_browser_stores_nothing(
    gw: RunningGateway, oidc: OIDCServer, linear_idp: OIDCServer
) -> None:
    async with httpx2.AsyncClient(timeout=30) as victim, httpx2.AsyncClient(timeout=30) as attacker:
        await oidc.sign_in_as(TEST_USER)
        page = await follow(attacker, await attacker.get(f"{gw.url}/my/tokens"))
        started = await attacker.post(
            f"{gw.url}/my/tokens/linear/connect", data={"csrf_token": csrf_of(page.text)}
        )
        # The attacker lets the provider answer, then hands the callback URL to another browser.
        response = await attacker.get(started.headers["location"])
        while response.is_redirect and "/oauth/callback/linear" not in response.headers["location"]:
            response = await attacker.get(urljoin(str(response.url), response.headers["location"]))
        callback = urljoin(str(response.url), response.headers["location"])
        await follow(victim, await victim.get(f"{gw.url}/my/tokens"))
        answer = await victim.get(callback)
        assert answer.status_code == 400
        assert "This connection has expired" in answer.text
    vault = gw.gateway.vault
    assert vault is not None
    assert await vault.load(f"user:{TEST_USER['sub']}", "linear", fresh=True) is None


async def test_two_replicas_renewing_at_once_make_one_refresh(
    port: int,
    oidc: OIDCServer,
    linear_idp: OIDCServer,
    storage: dict[str, Any],  # noqa: F811 - the fixture imported above
) -> None:
    """Two gateways on one Redis or PostgreSQL, the token due for renewal, calls on both at
    the same moment: the provider sees one refresh, and both replicas use its result."""
    base = f"http://127.0.0.1:{port}"
    auth = gateway_auth_config(base, oidc, storage=storage)
    servers = {"linear": linear_service(linear_idp)}
    other_port = free_port()
    async with (
        running_gateway(servers, proxy={"auth": auth}, port=port) as first,
        running_gateway(
            servers, proxy={"auth": auth, "baseURL": base, "addr": f"127.0.0.1:{other_port}"}, port=other_port
        ) as second,
    ):
        replicas = [first, second]
        for replica in replicas:
            account = replica.gateway.account
            assert account is not None
            account.connections.refresh_margin = REFRESH_MARGIN
        async with httpx2.AsyncClient(timeout=30) as http:
            await connect_linear(first, oidc, linear_idp, http)
        credential = await stored(first)
        assert credential.expires_at is not None
        token = await access_token(first)
        second_url = f"http://127.0.0.1:{other_port}"
        async with (
            connect(f"{first.url}/linear/mcp", token=token) as on_first,
            connect(f"{second_url}/linear/mcp", token=token) as on_second,
        ):
            for client in (on_first, on_second):
                seen = text_of(await client.call_tool("env", {"name": "LINEAR_TOKEN"}))
                assert seen == f"Bearer {credential.access_token}"
            await anyio.sleep(max(0.0, credential.expires_at - REFRESH_MARGIN - time.time()) + 0.3)
            refreshes = (await linear_idp.stats())["refresh_token"]
            results: list[str] = []

            async def call(client: Any) -> None:
                results.append(text_of(await client.call_tool("env", {"name": "LINEAR_TOKEN"})))

            async with anyio.create_task_group() as group:
                for _ in range(5):
                    group.start_soon(call, on_first)
                    group.start_soon(call, on_second)
            assert (await linear_idp.stats())["refresh_token"] == refreshes + 1
            renewed = await stored(second)
            assert renewed.access_token != credential.access_token
            assert len(results) == 10
            assert set(results) <= {f"Bearer {credential.access_token}", f"Bearer {renewed.access_token}"}
            for client in (on_first, on_second):
                seen = text_of(await client.call_tool("env", {"name": "LINEAR_TOKEN"}))
                assert seen == f"Bearer {renewed.access_token}"
            # Disconnected on one replica: the other stops using it within a second.
            vault = first.gateway.vault
            assert vault is not None
            await vault.delete(f"user:{TEST_USER['sub']}", "linear")
            disconnected_at = time.monotonic()
            while True:
                result = await on_second.call_tool("env", {"name": "LINEAR_TOKEN"})
                if result.is_error:
                    break
                assert time.monotonic() - disconnected_at < 1.0, "the other replica still uses it"
            assert "Linear is not connected for you yet" in text_of(result)

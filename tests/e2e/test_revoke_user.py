"""`Gateway.revoke_user`: a user who leaves loses every grant and every credential at once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx2
import pytest

from mcp_front.credentials import Credential
from tests.support.gateway import RunningGateway, running_gateway, stdio_service
from tests.support.oidc import TEST_USER, OIDCServer, gateway_auth_config
from tests.support.sign_in import register, sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture
async def gw(port: int, oidc: OIDCServer) -> AsyncIterator[RunningGateway]:
    auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc)
    services = {
        "probe": stdio_service(),
        "notion": stdio_service(
            requiresUserToken=True,
            userAuthentication={"type": "manual", "displayName": "Notion", "instructions": "Paste a key."},
            env={"NOTION_TOKEN": {"$userToken": "{{token}}"}},
        ),
    }
    async with running_gateway(services, proxy={"auth": auth}, port=port) as running:
        yield running


async def test_every_grant_and_credential_of_a_user_is_revoked(gw: RunningGateway) -> None:
    subject = TEST_USER["sub"]
    client = (await register(gw.url)).json()
    first = await sign_in(gw.url, client["client_id"], f"{gw.url}/probe")
    second = await sign_in(gw.url, client["client_id"], f"{gw.url}/notion")
    vault = gw.gateway.vault
    assert vault is not None
    credential = Credential(service="notion", kind="manual", access_token="secret_n", updated_at=time.time())
    await vault.put(f"user:{subject}", credential)

    revoked = await gw.gateway.revoke_user(subject)

    assert revoked.grants == 2
    assert revoked.credentials == ["notion"]
    assert await vault.get(f"user:{subject}", "notion") is None
    async with httpx2.AsyncClient(timeout=30) as http:
        for tokens, service in ((first, "probe"), (second, "notion")):
            refreshed = await http.post(
                f"{gw.url}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": tokens["refresh_token"],
                    "client_id": client["client_id"],
                },
            )
            assert refreshed.status_code == 400
            assert refreshed.json()["error"] == "invalid_grant"
            answer = await http.post(
                f"{gw.url}/{service}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            )
            assert answer.status_code == 401
    assert (await gw.gateway.revoke_user(subject)).grants == 0

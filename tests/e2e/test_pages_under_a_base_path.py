"""The gateway's pages under a base path (`proxy.baseURL` with a path): every link, form and
redirect stays under it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import httpx2
import pytest

from tests.e2e.test_my_tokens import GOOD_TOKEN, notion_service
from tests.support.gateway import running_gateway
from tests.support.net import free_port
from tests.support.oidc import TEST_USER, OIDCServer, gateway_auth_config, oidc_provider_process

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def oidc(port: int) -> Iterator[OIDCServer]:
    with oidc_provider_process(redirect_uris=[f"http://127.0.0.1:{port}/gw/oauth/callback"]) as server:
        yield server


async def test_sign_in_and_save_a_token_under_the_base_path(port: int, oidc: OIDCServer) -> None:
    base = f"http://127.0.0.1:{port}/gw"
    proxy = {"baseURL": base, "auth": gateway_auth_config(base, oidc)}
    async with running_gateway({"notion": notion_service()}, proxy=proxy, port=port):
        await oidc.sign_in_as(TEST_USER)
        async with httpx2.AsyncClient(timeout=30) as http:
            response = await http.get(f"{base}/my/tokens")
            visited = []
            while response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                visited.append(location)
                response = await http.get(location)
            assert response.status_code == 200
            ours = [urlsplit(url).path for url in visited if url.startswith(f"http://127.0.0.1:{port}")]
            assert ours
            assert all(path.startswith("/gw/") for path in ours), ours
            actions = re.findall(r'(?:action|href)="(/[^"]*)"', response.text)
            assert actions
            assert all(action.startswith("/gw/") for action in actions), actions
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
            assert csrf is not None
            saved = await http.post(
                f"{base}/my/tokens/notion", data={"csrf_token": csrf.group(1), "token": GOOD_TOKEN}
            )
            assert saved.status_code == 303
            assert saved.headers["location"].startswith("/gw/my/tokens?")
            assert "Connected" in (await http.get(urljoin(base, saved.headers["location"]))).text

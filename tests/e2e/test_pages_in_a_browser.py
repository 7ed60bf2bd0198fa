"""The gateway's pages in a real browser (Chromium, JavaScript off): sign in with the real
identity provider, paste a token (a bad one first), connect an OAuth service, see the
backend get the credential, sign an application out, disconnect. Every field has a label
and every page its security headers. `MCP_FRONT_SCREENSHOTS=1` writes the screenshots the
docs use to `docs/images/`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.e2e.test_my_tokens import notion_service
from tests.e2e.test_oauth_connections import linear_service
from tests.support.browser import chromium, without_javascript
from tests.support.clients import connect, text_of
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.oidc import TEST_USER, OIDCServer, gateway_auth_config, oidc_provider_process
from tests.support.sign_in import register, sign_in

pytestmark = pytest.mark.e2e

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
GOOD_TOKEN = "secret_ada0000001"


@pytest.fixture(scope="module")
def linear_idp(port: int) -> Iterator[OIDCServer]:
    with oidc_provider_process(
        redirect_uris=[f"http://127.0.0.1:{port}/oauth/callback/linear"], service=True
    ) as server:
        yield server


@pytest.fixture
async def gw(port: int, oidc: OIDCServer, linear_idp: OIDCServer) -> AsyncIterator[RunningGateway]:
    auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc)
    services = {"notion": notion_service(), "linear": linear_service(linear_idp)}
    async with running_gateway(services, proxy={"auth": auth}, port=port) as running:
        yield running


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: the docs' images when asked for, else a scratch folder."""
    if os.environ.get("MCP_FRONT_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        return DOCS_IMAGES
    return tmp_path


async def unlabelled_fields(page: Page) -> list[str]:
    """The visible form fields without a label naming them."""
    found = []
    for field in await page.locator("input:not([type=hidden]), select, textarea").all():
        field_id = await field.get_attribute("id")
        labelled = field_id is not None and await page.locator(f"label[for='{field_id}']").count() == 1
        if not labelled:
            found.append(await field.evaluate("element => element.outerHTML"))
    return found


async def check_page(page: Page, response: Any) -> None:
    assert await unlabelled_fields(page) == []
    headers = await response.all_headers() if response is not None else {}
    if headers:
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["x-frame-options"] == "DENY"


async def test_a_person_connects_services_and_manages_applications_in_a_browser(
    gw: RunningGateway, oidc: OIDCServer, shots: Path
) -> None:
    await oidc.sign_in_as(TEST_USER)
    client = (await register(gw.url, client_name="Claude Code")).json()
    await sign_in(gw.url, client["client_id"], f"{gw.url}/notion")
    async with chromium() as browser, without_javascript(browser) as context:
        page = await context.new_page()
        response = await page.goto(f"{gw.url}/my/tokens")
        assert page.url == f"{gw.url}/my/tokens"  # through the identity provider and back
        await check_page(page, response)
        assert await page.locator("h1").inner_text() == "Your connected services"
        assert "Signed in as ada@example.com" in await page.locator("main").inner_text()
        await page.screenshot(path=str(shots / "my-tokens.png"), full_page=True)

        await page.get_by_label("Notion token").fill("not-a-notion-token")
        await page.get_by_role("button", name="Save").click()
        alert = page.get_by_role("alert")
        assert "That does not look like the right token" in await alert.inner_text()
        await page.screenshot(path=str(shots / "my-tokens-invalid.png"), full_page=True)

        await page.get_by_label("Notion token").fill(GOOD_TOKEN)
        await page.get_by_role("button", name="Save").click()
        assert "Saved." in await page.get_by_role("status").inner_text()

        await page.get_by_role("button", name="Connect Linear").click()
        assert page.url.startswith(f"{gw.url}/my/tokens")
        assert "Connected. Your applications use it" in await page.get_by_role("status").inner_text()
        await check_page(page, None)
        await page.screenshot(path=str(shots / "my-tokens-connected.png"), full_page=True)

        access = (await sign_in(gw.url, client["client_id"], f"{gw.url}/notion"))["access_token"]
        async with connect(f"{gw.url}/notion/mcp", token=access) as mcp:
            assert text_of(await mcp.call_tool("env", {"name": "NOTION_TOKEN"})) == f"Bearer {GOOD_TOKEN}"

        await page.get_by_role("link", name="Signed-in applications").click()
        assert await page.locator("h1").inner_text() == "Your signed-in applications"
        assert "Claude Code" in await page.locator("main").inner_text()
        await page.screenshot(path=str(shots / "my-clients.png"), full_page=True)
        await page.get_by_role("button", name="Sign out Claude Code").first.click()
        assert "Signed out." in await page.get_by_role("status").inner_text()

        await page.get_by_role("link", name="Connected services").click()
        section = page.locator("#service-notion")
        await section.get_by_role("button", name="Disconnect").click()
        assert "Disconnected." in await page.get_by_role("status").inner_text()
        assert "Not connected" in await page.locator("#service-notion").inner_text()

        response = await page.goto(f"{gw.url}/my/tokens?service=notion&for=0123456789abcdef0123456789abcdef")
        assert response is not None
        assert response.status == 403
        assert await page.locator("h1").inner_text() == "This link was made for someone else"
        await page.screenshot(path=str(shots / "error.png"), full_page=True)
        await page.goto(f"{gw.url}/my/tokens")

        await page.get_by_role("button", name="Sign out", exact=True).click()
        assert await page.locator("h1").inner_text() == "You are signed out"
        assert [c for c in await context.cookies() if c["name"] == "mcp_front_session"] == []
        await page.screenshot(path=str(shots / "signed-out.png"), full_page=True)
        visited: list[str] = []
        page.on("request", lambda request: visited.append(request.url))
        await page.goto(f"{gw.url}/my/clients")
        assert any(url.startswith(oidc.issuer) for url in visited)  # through the provider again
        assert page.url == f"{gw.url}/my/clients"


async def test_the_page_after_an_application_signs_in_and_the_consent_page(
    gw: RunningGateway, oidc: OIDCServer, shots: Path
) -> None:
    await oidc.sign_in_as(TEST_USER)
    client = (await register(gw.url, client_name="Cursor")).json()
    from tests.support.sign_in import LOOPBACK_REDIRECT, pkce

    _, challenge = pkce()
    query = (
        f"response_type=code&client_id={client['client_id']}&redirect_uri={LOOPBACK_REDIRECT}"
        f"&state=s&code_challenge={challenge}&code_challenge_method=S256&resource={gw.url}/notion"
    )
    async with chromium() as browser, without_javascript(browser) as context:
        page = await context.new_page()
        # Over http on loopback only a browser signed in to the pages sees the page after sign-in.
        await page.goto(f"{gw.url}/my/tokens")
        response = await page.goto(f"{gw.url}/authorize?{query}")
        assert await page.locator("h1").inner_text() == "Allow Cursor to use notion?"
        await check_page(page, response)
        await page.screenshot(path=str(shots / "consent.png"), full_page=True)
        await page.get_by_role("button", name="Allow").click()
        assert await page.locator("h1").inner_text() == "Before you go back to your application"
        await check_page(page, None)
        await page.screenshot(path=str(shots / "connect-first.png"), full_page=True)
        await page.get_by_role("link", name="Connect Notion").click()
        await page.get_by_label("Notion token").fill(GOOD_TOKEN)
        await page.get_by_role("button", name="Save").click()
        assert "Connected" in await page.locator("main").inner_text()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        await page.get_by_role("button", name="Continue to 127.0.0.1:3999").click()
        assert any(url.startswith(LOOPBACK_REDIRECT + "?code=") for url in requests)

"""Each user's own credential: sign in to the gateway's page with the real identity provider,
save a token, and see it reach that user's backend, and nobody else's."""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2
import pytest

from mcp_front.credentials import CREDENTIALS_NAMESPACE
from tests.support.clients import connect, text_of
from tests.support.gateway import RunningGateway, running_gateway, stdio_service
from tests.support.oidc import (
    OTHER_USER,
    TEST_USER,
    OIDCServer,
    consent_form,
    gateway_auth_config,
)
from tests.support.pages import csrf_of
from tests.support.raw import events, modern_headers, modern_request
from tests.support.sign_in import LOOPBACK_REDIRECT, pkce, query_of, register, sign_in

pytestmark = pytest.mark.e2e

GOOD_TOKEN = "secret_ada0000001"
VALIDATION = "^secret_[a-z0-9]{10}$"


def notion_service() -> dict[str, Any]:
    return stdio_service(
        requiresUserToken=True,
        userAuthentication={
            "type": "manual",
            "displayName": "Notion",
            "instructions": "Create an internal integration and copy its secret.",
            "helpUrl": "https://www.notion.so/my-integrations",
            "validation": VALIDATION,
            "tokenFormat": "Bearer {{token}}",
        },
        env={"NOTION_TOKEN": {"$userToken": "{{token}}"}},
    )


@pytest.fixture
async def gw(port: int, oidc: OIDCServer) -> AsyncIterator[RunningGateway]:
    auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc)
    async with running_gateway({"notion": notion_service()}, proxy={"auth": auth}, port=port) as gateway:
        yield gateway


@dataclass
class PageBrowser:
    """A browser on the gateway's pages: follows redirects with its cookies (IdP's included)."""

    gateway: str
    http: httpx2.AsyncClient

    async def open(self, path: str) -> httpx2.Response:
        url = urljoin(self.gateway, path)
        for _ in range(12):
            response = await self.http.get(url)
            if not response.is_redirect:
                return response
            url = urljoin(url, response.headers["location"])
        raise AssertionError(f"too many redirects from {path}")

    async def post(self, path: str, fields: dict[str, str]) -> httpx2.Response:
        return await self.http.post(urljoin(self.gateway, path), data=fields)


@pytest.fixture
async def ada(gw: RunningGateway, oidc: OIDCServer) -> AsyncIterator[PageBrowser]:
    await oidc.sign_in_as(TEST_USER)
    async with httpx2.AsyncClient(timeout=30) as http:
        yield PageBrowser(gw.url, http)


async def access_token(
    gw: RunningGateway, oidc: OIDCServer, user: dict[str, Any], service: str = "notion"
) -> str:
    await oidc.sign_in_as(user)
    client = (await register(gw.url)).json()
    tokens = await sign_in(gw.url, client["client_id"], f"{gw.url}/{service}")
    return str(tokens["access_token"])


async def test_sign_in_save_a_token_and_the_users_backend_gets_it(
    gw: RunningGateway, oidc: OIDCServer, ada: PageBrowser
) -> None:
    page = await ada.open("/my/tokens")
    assert page.status_code == 200
    assert "Signed in as <strong>ada@example.com</strong>" in page.text
    assert "Not connected" in page.text
    assert "Create an internal integration and copy its secret." in page.text
    cookie = next(c for c in ada.http.cookies.jar if c.name == "mcp_front_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    csrf = csrf_of(page.text)

    refused = await ada.post("/my/tokens/notion", {"csrf_token": csrf, "token": "not-a-notion-token"})
    assert refused.status_code == 303
    shown = await ada.open(refused.headers["location"])
    assert "That does not look like the right token" in shown.text
    assert "not-a-notion-token" not in shown.text

    saved = await ada.post("/my/tokens/notion", {"csrf_token": csrf, "token": f"  {GOOD_TOKEN} "})
    assert saved.status_code == 303
    shown = await ada.open(saved.headers["location"])
    assert "Connected" in shown.text
    assert "Saved. Your applications use it from their next request." in shown.text
    assert GOOD_TOKEN not in shown.text

    token = await access_token(gw, oidc, TEST_USER)
    async with connect(f"{gw.url}/notion/mcp", token=token) as client:
        assert text_of(await client.call_tool("env", {"name": "NOTION_TOKEN"})) == f"Bearer {GOOD_TOKEN}"

    # At rest the credential is sealed: not the token, not the user.
    store = gw.gateway.authorization_server.store  # type: ignore[union-attr]
    for key, sealed in await store.scan(CREDENTIALS_NAMESPACE):
        assert GOOD_TOKEN.encode() not in sealed
        assert "ada" not in key

    disconnected = await ada.post("/my/tokens/notion/disconnect", {"csrf_token": csrf})
    assert disconnected.status_code == 303
    assert "Not connected" in (await ada.open(disconnected.headers["location"])).text


async def test_a_post_without_its_csrf_token_is_refused(ada: PageBrowser) -> None:
    page = await ada.open("/my/tokens")
    assert page.status_code == 200
    for fields in ({"token": GOOD_TOKEN}, {"token": GOOD_TOKEN, "csrf_token": "forged"}):
        response = await ada.post("/my/tokens/notion", fields)
        assert response.status_code == 403
        assert "This form has expired" in response.text
    assert "Not connected" in (await ada.open("/my/tokens")).text


async def test_a_tampered_cookie_signs_the_user_out(ada: PageBrowser) -> None:
    assert (await ada.open("/my/tokens")).status_code == 200
    cookie = next(c for c in ada.http.cookies.jar if c.name == "mcp_front_session")
    value = cookie.value
    cookie.value = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    response = await ada.http.get(urljoin(ada.gateway, "/my/tokens"))
    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == "/my/signin"
    assert 'mcp_front_session=""' in response.headers["set-cookie"]


async def test_signing_out_ends_the_session_for_good(ada: PageBrowser) -> None:
    page = await ada.open("/my/tokens")
    cookie = next(c for c in ada.http.cookies.jar if c.name == "mcp_front_session").value
    out = await ada.post("/my/signout", {"csrf_token": csrf_of(page.text)})
    assert out.status_code == 200
    assert "You are signed out" in out.text
    # The old cookie, replayed, no longer opens a session.
    async with httpx2.AsyncClient(cookies={"mcp_front_session": cookie}) as replay:
        response = await replay.get(urljoin(ada.gateway, "/my/tokens"))
    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == "/my/signin"


async def test_one_user_never_gets_anothers_credential(
    gw: RunningGateway, oidc: OIDCServer, ada: PageBrowser
) -> None:
    page = await ada.open("/my/tokens")
    await ada.post("/my/tokens/notion", {"csrf_token": csrf_of(page.text), "token": GOOD_TOKEN})
    ada_token = await access_token(gw, oidc, TEST_USER)
    grace_token = await access_token(gw, oidc, OTHER_USER)
    async with connect(f"{gw.url}/notion/mcp", token=grace_token) as grace:
        # Ada's credential is not Grace's: her tool call is answered with the way to connect.
        result = await grace.call_tool("env", {"name": "NOTION_TOKEN"})
        assert result.is_error
        text = text_of(result)
        assert text.startswith("Notion is not connected for you yet. Open http://127.0.0.1:")
        assert "/my/tokens?service=notion&for=" in text
        assert GOOD_TOKEN not in text
        # Grace connects her own, in her own browser.
        await oidc.sign_in_as(OTHER_USER)
        async with httpx2.AsyncClient(timeout=30) as http:
            browser = PageBrowser(gw.url, http)
            own = await browser.open("/my/tokens")
            assert "Signed in as <strong>grace@example.com</strong>" in own.text
            assert "Not connected" in own.text
            grace_secret = "secret_grace00001"
            await browser.post("/my/tokens/notion", {"csrf_token": csrf_of(own.text), "token": grace_secret})
        assert text_of(await grace.call_tool("env", {"name": "NOTION_TOKEN"})) == f"Bearer {grace_secret}"
    async with connect(f"{gw.url}/notion/mcp", token=ada_token) as client:
        assert text_of(await client.call_tool("env", {"name": "NOTION_TOKEN"})) == f"Bearer {GOOD_TOKEN}"


async def test_a_session_started_before_connecting_gets_the_credential_without_reconnecting(
    gw: RunningGateway, oidc: OIDCServer, ada: PageBrowser
) -> None:
    token = await access_token(gw, oidc, TEST_USER)
    async with connect(f"{gw.url}/notion/mcp", token=token) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"echo", "env"} <= tools
        missing = await client.call_tool("env", {"name": "NOTION_TOKEN"})
        assert missing.is_error
        link = re.search(r"Open (\S+) to connect it", text_of(missing))
        assert link is not None
        page = await ada.open(link.group(1))
        assert page.status_code == 200
        await ada.post(
            "/my/tokens/notion",
            {"csrf_token": csrf_of(page.text), "token": GOOD_TOKEN, "for": link.group(1).split("for=")[1]},
        )
        assert text_of(await client.call_tool("env", {"name": "NOTION_TOKEN"})) == f"Bearer {GOOD_TOKEN}"


async def test_a_connect_link_made_for_another_user_stores_nothing(
    gw: RunningGateway, oidc: OIDCServer, ada: PageBrowser
) -> None:
    grace_token = await access_token(gw, oidc, OTHER_USER)
    async with connect(f"{gw.url}/notion/mcp", token=grace_token) as grace:
        link = re.search(r"Open (\S+) to connect it", text_of(await grace.call_tool("echo", {"text": "x"})))
    assert link is not None
    await oidc.sign_in_as(TEST_USER)
    page = await ada.open(link.group(1))
    assert page.status_code == 403
    assert "This link was made for someone else" in page.text
    own = await ada.open("/my/tokens")
    tag = link.group(1).split("for=")[1]
    refused = await ada.post(
        "/my/tokens/notion", {"csrf_token": csrf_of(own.text), "token": GOOD_TOKEN, "for": tag}
    )
    assert refused.status_code == 403
    assert "Not connected" in (await ada.open("/my/tokens")).text


async def test_the_organisations_fallback_stands_in_and_is_audited_as_shared(
    port: int, oidc: OIDCServer, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    service = notion_service()
    service["userAuthentication"]["fallbackToken"] = "secret_orgshared"
    auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc)
    proxy = {"auth": auth, "audit": {"file": str(audit)}}
    async with running_gateway({"notion": service}, proxy=proxy, port=port) as gw:
        grace_token = await access_token(gw, oidc, OTHER_USER)
        async with connect(f"{gw.url}/notion/mcp", token=grace_token) as grace:
            seen = text_of(await grace.call_tool("env", {"name": "NOTION_TOKEN"}))
        assert seen == "Bearer secret_orgshared"
        await oidc.sign_in_as(TEST_USER)
        async with httpx2.AsyncClient(timeout=30) as http:
            ada = PageBrowser(gw.url, http)
            page = await ada.open("/my/tokens")
            assert "Not connected" in page.text
            assert "orgshared" not in page.text
            await ada.post("/my/tokens/notion", {"csrf_token": csrf_of(page.text), "token": GOOD_TOKEN})
        ada_token = await access_token(gw, oidc, TEST_USER)
        async with connect(f"{gw.url}/notion/mcp", token=ada_token) as client:
            assert text_of(await client.call_tool("env", {"name": "NOTION_TOKEN"})) == f"Bearer {GOOD_TOKEN}"
    calls = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(call["email"], call["credential"]) for call in calls] == [
        ("grace@example.com", "shared"),
        ("ada@example.com", "own"),
    ]
    assert "orgshared" not in audit.read_text()
    assert GOOD_TOKEN not in audit.read_text()


async def test_my_clients_lists_the_signed_in_applications_and_signs_one_out(
    gw: RunningGateway, oidc: OIDCServer, ada: PageBrowser
) -> None:
    await oidc.sign_in_as(TEST_USER)
    client = (await register(gw.url, client_name="Ada's <laptop>")).json()
    tokens = await sign_in(gw.url, client["client_id"], f"{gw.url}/notion")
    await oidc.sign_in_as(OTHER_USER)
    other = (await register(gw.url, client_name="Grace's editor")).json()
    await sign_in(gw.url, other["client_id"], f"{gw.url}/notion")
    await oidc.sign_in_as(TEST_USER)

    page = await ada.open("/my/clients")
    assert page.status_code == 200
    assert "Ada&#39;s &lt;laptop&gt;" in page.text  # escaped: a client names itself
    assert "Grace" not in page.text  # another user's applications are not listed
    assert client["client_id"] in page.text
    family = re.search(r'action="/my/clients/([^/"]+)/revoke"', page.text)
    assert family is not None

    forged = await ada.post(f"/my/clients/{family.group(1)}/revoke", {"csrf_token": "forged"})
    assert forged.status_code == 403
    revoked = await ada.post(f"/my/clients/{family.group(1)}/revoke", {"csrf_token": csrf_of(page.text)})
    assert revoked.status_code == 303
    after = await ada.open(revoked.headers["location"])
    assert "Signed out. That application must sign in again" in after.text
    assert "laptop" not in after.text

    async with httpx2.AsyncClient(timeout=30) as http:
        refreshed = await http.post(
            f"{gw.url}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": client["client_id"],
                "resource": f"{gw.url}/notion",
            },
        )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"


async def test_after_signing_in_an_application_the_user_connects_what_is_missing_then_goes_back(
    gw: RunningGateway, oidc: OIDCServer
) -> None:
    await oidc.sign_in_as(TEST_USER)
    client = (await register(gw.url)).json()
    verifier, challenge = pkce()
    # Over http on loopback the sign-in opens no pages session (cookies reach every port):
    # the page after it is for a browser already signed in to the pages.
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": LOOPBACK_REDIRECT,
        "state": "s-7",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": f"{gw.url}/notion",
    }
    async with httpx2.AsyncClient(timeout=30) as http:
        signed_in = await PageBrowser(gw.url, http).open("/my/tokens")
        assert signed_in.status_code == 200
        url = str(httpx2.URL(f"{gw.url}/authorize", params=params))
        page = await http.get(url)
        for _ in range(15):  # the identity provider's hops, then the consent page
            if page.is_redirect:
                page = await http.get(urljoin(str(page.url), page.headers["location"]))
            elif "decision" in page.text:
                action, fields = consent_form(page.text)
                page = await http.post(urljoin(str(page.url), action), data={**fields, "decision": "approve"})
            else:
                break
        # One sign-in: the page after it lists what is missing, with no second login.
        assert page.status_code == 200, page.text
        assert urlsplit(str(page.url)).path.startswith("/my/continue/")
        assert "Before you go back to your application" in page.text
        assert "Not connected" in page.text
        assert "code=" not in str(page.url)
        continue_url = str(page.url)
        link = re.search(r'href="([^"]*/my/tokens\?service=notion[^"]*)"', page.text)
        assert link is not None
        tokens_page = await http.get(urljoin(continue_url, html.unescape(link.group(1))))
        assert tokens_page.status_code == 200
        fields = {"csrf_token": csrf_of(tokens_page.text), "token": GOOD_TOKEN}
        fields["then"] = urlsplit(continue_url).path.rsplit("/", 1)[1]
        saved = await http.post(f"{gw.url}/my/tokens/notion", data=fields)
        assert saved.status_code == 303
        back = await http.get(urljoin(continue_url, saved.headers["location"]))
        assert "Connected" in back.text
        resumed = await http.post(continue_url, data={"csrf_token": csrf_of(back.text)})
        assert resumed.status_code == 303
        assert resumed.headers["location"].startswith(LOOPBACK_REDIRECT)
        code = query_of(resumed.headers["location"])["code"]
        # Single use: the way back cannot be taken twice.
        again = await http.post(continue_url, data={"csrf_token": csrf_of(back.text)})
        assert again.status_code == 400
        exchanged = await http.post(
            f"{gw.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": LOOPBACK_REDIRECT,
                "code_verifier": verifier,
                "client_id": client["client_id"],
                "resource": f"{gw.url}/notion",
            },
        )
        assert exchanged.status_code == 200
    async with connect(f"{gw.url}/notion/mcp", token=exchanged.json()["access_token"]) as mcp:
        assert text_of(await mcp.call_tool("env", {"name": "NOTION_TOKEN"})) == f"Bearer {GOOD_TOKEN}"


async def test_through_an_aggregate_each_member_gets_the_callers_own_credential_and_no_log_holds_it(
    port: int, oidc: OIDCServer, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc)
    audit = tmp_path / "audit.jsonl"
    services = {
        "notion": notion_service(),
        "probe": stdio_service(),
        "all": {"type": "aggregate", "servers": ["notion", "probe"]},
    }
    proxy = {"auth": auth, "audit": {"file": str(audit)}}
    async with running_gateway(services, proxy=proxy, port=port) as gw:
        await oidc.sign_in_as(TEST_USER)
        async with httpx2.AsyncClient(timeout=30) as http:
            ada = PageBrowser(gw.url, http)
            page = await ada.open("/my/tokens")
            shown = await ada.post(
                "/my/tokens/notion", {"csrf_token": csrf_of(page.text), "token": GOOD_TOKEN}
            )
            assert "Connected" in (await ada.open(shown.headers["location"])).text
        token = await access_token(gw, oidc, TEST_USER, service="all")
        async with connect(f"{gw.url}/all/mcp", token=token) as client:
            seen = text_of(await client.call_tool("notion.env", {"name": "NOTION_TOKEN"}))
            assert seen == f"Bearer {GOOD_TOKEN}"
            # The other member gets no credential, and the client's own token reaches no backend.
            assert text_of(await client.call_tool("probe.env", {"name": "NOTION_TOKEN"})) == "<unset>"
            names = (await client.call_tool("notion.env_names", {})).structured_content
            assert names is not None
            assert not [name for name in names["result"] if "AUTHORIZATION" in name.upper()]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "ada@example.com" in logged  # the log did record the work
    for secret in (GOOD_TOKEN, token):
        assert secret not in logged
        assert secret not in audit.read_text()


async def test_over_loopback_http_an_application_sign_in_opens_no_pages_session(
    gw: RunningGateway, oidc: OIDCServer
) -> None:
    await oidc.sign_in_as(TEST_USER)
    client = (await register(gw.url)).json()
    _, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": LOOPBACK_REDIRECT,
        "state": "s-8",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": f"{gw.url}/notion",
    }
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.get(str(httpx2.URL(f"{gw.url}/authorize", params=params)))
        for _ in range(15):
            if response.is_redirect and not response.headers["location"].startswith(LOOPBACK_REDIRECT):
                response = await http.get(urljoin(str(response.url), response.headers["location"]))
            elif "decision" in response.text:
                action, fields = consent_form(response.text)
                response = await http.post(
                    urljoin(str(response.url), action), data={**fields, "decision": "approve"}
                )
            else:
                break
        # Straight back to the application, and no cookie of the pages for its listener to see.
        assert response.headers["location"].startswith(LOOPBACK_REDIRECT)
        assert "mcp_front_session" not in response.headers.get("set-cookie", "")
        assert not [cookie for cookie in http.cookies.jar if cookie.name == "mcp_front_session"]


async def test_a_2026_client_gets_input_required_and_its_retry_goes_through_once_connected(
    gw: RunningGateway, oidc: OIDCServer, ada: PageBrowser
) -> None:
    token = await access_token(gw, oidc, TEST_USER)
    capabilities = {"elicitation": {"url": {}}}

    async def call(**extra: Any) -> dict[str, Any]:
        request = modern_request(
            1, "tools/call", {"name": "env", "arguments": {"name": "NOTION_TOKEN"}, **extra}
        )
        request["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = capabilities
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            response = await http.post(
                f"{gw.url}/notion/mcp", json=request, headers=modern_headers("tools/call", "env")
            )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = events(response.text)[-1]
        return answer

    first = (await call())["result"]
    assert first["resultType"] == "input_required"
    elicitation = first["inputRequests"]["connect"]
    assert elicitation["method"] == "elicitation/create"
    assert elicitation["params"]["mode"] == "url"
    link = elicitation["params"]["url"]
    assert "/my/tokens?service=notion&for=" in link
    page = await ada.open(link)
    fields = {"csrf_token": csrf_of(page.text), "token": GOOD_TOKEN, "for": link.split("for=")[1]}
    assert (await ada.post("/my/tokens/notion", fields)).status_code == 303
    retried = await call(requestState=first["requestState"], inputResponses={"connect": {"action": "accept"}})
    assert retried["result"]["content"][0]["text"] == f"Bearer {GOOD_TOKEN}"


async def test_page_sign_ins_are_rate_limited_per_address(port: int, oidc: OIDCServer) -> None:
    auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc)
    proxy = {"auth": auth, "rateLimits": {"authorize": {"requests": 3, "per": "1m"}}}
    async with running_gateway({"notion": notion_service()}, proxy=proxy, port=port) as gw:
        async with httpx2.AsyncClient(timeout=30) as http:
            answers = [(await http.get(f"{gw.url}/my/signin")).status_code for _ in range(5)]
            assert answers[:3] == [302, 302, 302]
            assert answers[3:] == [429, 429]
            refused = await http.get(f"{gw.url}/my/signin")
            assert int(refused.headers["retry-after"]) > 0
            assert "text/html" in refused.headers["content-type"]

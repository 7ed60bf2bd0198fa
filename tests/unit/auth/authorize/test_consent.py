"""The consent page and its form: content, escaping, CSRF, memory, headers."""

from __future__ import annotations

import re

import httpx2

from .conftest import APP_REDIRECT, ISSUER, Gateway, query_of


async def consent_page(gw: Gateway, **overrides: str | None) -> httpx2.Response:
    response = await gw.callback(await gw.sign_in(**overrides))
    assert response.status_code == 200, response.text
    return response


def form_fields(page: httpx2.Response) -> dict[str, str]:
    return dict(re.findall(r'name="(consent|csrf_token)" value="([^"]*)"', page.text))


async def answer(gw: Gateway, fields: dict[str, str], decision: str = "approve") -> httpx2.Response:
    return await gw.http.post("/oauth/consent", data={**fields, "decision": decision})


async def test_page_names_client_host_service_and_user(gw: Gateway) -> None:
    page = await consent_page(gw)
    assert "Test App" in page.text
    assert "app.example.com" in page.text
    assert "linear" in page.text
    assert f"{ISSUER}/linear" in page.text
    assert "ada@example.com" in page.text
    assert 'action="/oauth/consent"' in page.text


def shown(page: httpx2.Response, term: str) -> str:
    found = re.search(rf"<dt>{term}</dt><dd>(.*?)</dd>", page.text)
    assert found is not None, page.text
    return re.sub(r"<[^>]+>", "", found.group(1))


async def test_page_always_shows_where_the_browser_goes_back(gw: Gateway) -> None:
    page = await consent_page(gw)
    assert shown(page, "Sends you back to") == "app.example.com"
    assert "Described at" not in page.text
    assert "Check this application" not in page.text


async def test_metadata_document_client_shows_both_hosts_and_warns_when_they_differ(gw: Gateway) -> None:
    page = await consent_page(
        gw, client_id="https://meta.example.org/client.json", redirect_uri="https://app2.example.net/cb"
    )
    assert shown(page, "Sends you back to") == "app2.example.net"
    assert shown(page, "Described at") == "meta.example.org"
    warning = re.search(r'<p class="warning" role="alert">(.*?)</p>', page.text, re.S)
    assert warning is not None
    assert "meta.example.org" in warning.group(1)
    assert "app2.example.net" in warning.group(1)


async def test_metadata_document_client_on_its_own_host_gets_no_warning(gw: Gateway) -> None:
    gw.clients.clients["https://same.example.org/c.json"] = gw.clients.clients[
        "https://meta.example.org/client.json"
    ].model_copy(
        update={
            "client_id": "https://same.example.org/c.json",
            "redirect_uris": ["https://same.example.org/cb"],
        }
    )
    page = await consent_page(
        gw, client_id="https://same.example.org/c.json", redirect_uri="https://same.example.org/cb"
    )
    assert shown(page, "Sends you back to") == "same.example.org"
    assert shown(page, "Described at") == "same.example.org"
    assert "Check this application" not in page.text


async def test_an_application_link_is_shown_as_such(gw: Gateway) -> None:
    page = await consent_page(gw, client_id="native", redirect_uri="claude://callback")
    assert shown(page, "Sends you back to") == "claude: (an application on this device)"


async def test_client_name_is_escaped(gw: Gateway) -> None:
    page = await consent_page(gw, client_id="evil", redirect_uri="https://evil.example.com/cb")
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_security_headers(gw: Gateway) -> None:
    page = await consent_page(gw)
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "base-uri 'none'" in csp
    assert "form-action 'self' https://app.example.com" in csp
    nonce = re.search(r"style-src 'nonce-([^']+)'", csp)
    assert nonce is not None
    assert f'<style nonce="{nonce.group(1)}">' in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"


async def test_error_page_has_security_headers(gw: Gateway) -> None:
    page = await gw.authorize(client_id="nobody")
    assert page.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in page.headers["content-security-policy"]


async def test_private_use_scheme_in_form_action(gw: Gateway) -> None:
    page = await consent_page(gw, client_id="native", redirect_uri="claude://callback")
    assert "form-action 'self' claude:;" in page.headers["content-security-policy"]


async def test_post_without_csrf_token_is_refused(gw: Gateway) -> None:
    fields = form_fields(await consent_page(gw))
    response = await answer(gw, {"consent": fields["consent"]})
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_post_with_wrong_csrf_token_is_refused_and_burns_the_page(gw: Gateway) -> None:
    fields = form_fields(await consent_page(gw))
    assert (await answer(gw, {**fields, "csrf_token": "x" * 43})).status_code == 400
    assert (await answer(gw, fields)).status_code == 400  # single use


async def test_post_from_another_browser_is_refused(gw: Gateway) -> None:
    fields = form_fields(await consent_page(gw))
    gw.http.cookies.clear()
    assert (await answer(gw, fields)).status_code == 400


async def test_approve_issues_a_code_and_is_remembered(gw: Gateway) -> None:
    fields = form_fields(await consent_page(gw))
    response = await answer(gw, fields)
    assert response.status_code == 302
    assert response.headers["location"].startswith(APP_REDIRECT + "?")
    query = query_of(response.headers["location"])
    assert query["state"] == "client-state"
    assert query["iss"] == ISSUER
    grant = await gw.codes.redeem(query["code"])
    assert grant is not None
    assert grant.subject == "sub-ada"
    assert (await answer(gw, fields)).status_code == 400  # the form is single use

    again = await gw.callback(await gw.sign_in(state="second"))
    assert again.status_code == 302
    second = query_of(again.headers["location"])
    assert second["state"] == "second"
    assert "code" in second


async def test_consent_for_loopback_ignores_the_port(gw: Gateway) -> None:
    page = await consent_page(gw, client_id="native", redirect_uri="http://127.0.0.1:4000/callback")
    approved = await answer(gw, form_fields(page))
    assert approved.headers["location"].startswith("http://127.0.0.1:4000/callback?code=")
    again = await gw.callback(
        await gw.sign_in(client_id="native", redirect_uri="http://127.0.0.1:5000/callback")
    )
    assert again.status_code == 302
    assert again.headers["location"].startswith("http://127.0.0.1:5000/callback?code=")


async def test_deny_sends_access_denied(gw: Gateway) -> None:
    fields = form_fields(await consent_page(gw))
    response = await answer(gw, fields, decision="deny")
    query = query_of(response.headers["location"])
    assert query["error"] == "access_denied"
    assert query["state"] == "client-state"
    assert query["iss"] == ISSUER
    assert "code" not in query
    assert (await consent_page(gw)).status_code == 200  # not remembered


async def test_an_approval_is_for_one_service_only(gw: Gateway) -> None:
    """Approving a client for one service is not approving it for another: each asks."""
    await answer(gw, form_fields(await consent_page(gw)))
    remembered = await gw.callback(await gw.sign_in(state="again"))
    assert remembered.status_code == 302
    other = await consent_page(gw, resource=f"{ISSUER}/notion")
    assert "notion" in other.text

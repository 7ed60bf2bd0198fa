"""`/authorize`: pages before the redirect URI is trusted, redirects after, then off to the IdP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from mcp_front.auth.redirect_uris import match_redirect_uri

from .conftest import (
    APP_REDIRECT,
    CALLBACK,
    CHALLENGE,
    ISSUER,
    RESOURCE,
    Gateway,
    open_gateway,
    query_of,
    refusal_of,
)


def assert_page(response: httpx2.Response, status: int = 400) -> None:
    assert response.status_code == status
    headers = response.headers
    assert "location" not in headers
    assert headers["content-type"].startswith("text/html")


async def test_unregistered_redirect_uri_is_a_page_never_a_redirect(gw: Gateway) -> None:
    response = await gw.authorize(redirect_uri="https://attacker.example/steal")
    assert_page(response)
    assert "did not register" in response.text
    assert not gw.idp.started


async def test_unknown_client_is_a_page(gw: Gateway) -> None:
    response = await gw.authorize(client_id="nobody")
    assert_page(response)
    assert "not registered" in response.text


async def test_missing_client_id_and_repeated_redirect_uri_are_pages(gw: Gateway) -> None:
    assert_page(await gw.authorize(client_id=None))
    response = await gw.http.get(
        "/authorize",
        params=[("client_id", "app"), ("redirect_uri", APP_REDIRECT), ("redirect_uri", APP_REDIRECT)],
    )
    assert_page(response)


async def test_omitted_redirect_uri_only_with_a_single_registration(gw: Gateway) -> None:
    assert_page(await gw.authorize(redirect_uri=None))  # "app" registered two
    response = await gw.authorize(client_id="trusted", redirect_uri=None)
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://idp.example/")


async def test_loopback_redirect_any_port_same_path(gw: Gateway) -> None:
    ok = await gw.authorize(client_id="native", redirect_uri="http://127.0.0.1:53119/callback")
    assert ok.status_code == 302
    assert ok.headers["location"].startswith("https://idp.example/")
    assert_page(await gw.authorize(client_id="native", redirect_uri="http://127.0.0.1:53119/other"))
    assert_page(await gw.authorize(client_id="native", redirect_uri="http://localhost:53119/callback"))


@pytest.mark.parametrize(
    "requested",
    [
        "http://evil@127.0.0.1:5555/cb",
        "http://127.0.0.1:5555/x/../cb",
        "http://127.0.0.1:5555/./cb",
        "http://127.1:5555/cb",
        "http://0x7f.0.0.1:5555/cb",
        "http://2130706433:5555/cb",
        "HTTP://127.0.0.1:5555/cb",
        "http://127.0.0.1:05555/cb",
        "http://127.0.0.1:5555/cb/",
        "http://127.0.0.1:5555/CB",
        "http://127.0.0.1:5555/c%62",
        "http://127.0.0.1:5555/cb?",
        "http://127.0.0.1:5555//cb",
        "http://127.0.0.1:99999/cb",
        "http://[::ffff:127.0.0.1]:5555/cb",
        "https://app.example.com/cb/../cb",
        "https://APP.example.com/cb",
        "https://app.example.com:443/cb",
        "https://evil@app.example.com/cb",
        "https://app.example.com/cb%20",
    ],
)
def test_redirect_uris_match_as_exact_strings(requested: str) -> None:
    """Only the loopback port is free; nothing is normalised before comparing."""
    registered = ["http://127.0.0.1:5555/cb", "https://app.example.com/cb"]
    assert match_redirect_uri(requested, registered) is None
    assert match_redirect_uri("http://127.0.0.1:5555/cb", registered) == "http://127.0.0.1:5555/cb"
    assert match_redirect_uri("http://127.0.0.1:6/cb", registered) == "http://127.0.0.1:6/cb"


def test_loopback_flexibility_can_be_switched_off() -> None:
    registered = ["http://127.0.0.1/callback", "http://[::1]:8080/cb"]
    assert match_redirect_uri("http://127.0.0.1:9/callback", registered) == "http://127.0.0.1:9/callback"
    assert match_redirect_uri("http://[::1]:9/cb", registered) == "http://[::1]:9/cb"
    assert (
        match_redirect_uri("http://127.0.0.1:9/callback", registered, loopback_port_flexibility=False) is None
    )
    assert match_redirect_uri("https://127.0.0.1:9/callback", registered) is None
    assert match_redirect_uri("https://app.example/cb#x", ["https://app.example/cb#x"]) is None


def error_of(response: httpx2.Response) -> dict[str, str]:
    return refusal_of(response)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain", "code_challenge": "x" * 43}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "unsupported_response_type"),
        ({"resource": "https://gw.example.com/unknown"}, "invalid_target"),
        ({"resource": "https://other.example.com/linear"}, "invalid_target"),
        ({"resource": "ftp://gw.example.com/linear"}, "invalid_target"),
        ({"scope": 'bad"scope'}, "invalid_scope"),
    ],
)
async def test_errors_after_redirect_validation_go_back_to_the_client(
    gw: Gateway, overrides: dict[str, str | None], error: str
) -> None:
    query = error_of(await gw.authorize(**overrides))
    assert query["error"] == error
    assert query["error_description"]
    assert query["state"] == "client-state"
    assert query["iss"] == ISSUER
    assert not gw.idp.started


async def test_a_trusted_client_is_sent_back_at_once(gw: Gateway) -> None:
    """RFC 9700 §4.11.2: only a redirect URI the server trusts gets an automatic redirect."""
    response = await gw.authorize(
        client_id="trusted", redirect_uri="https://trusted.example.com/cb", response_type="token"
    )
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("https://trusted.example.com/cb?")
    query = query_of(location)
    assert query["error"] == "unsupported_response_type"
    assert query["state"] == "client-state"


async def test_a_refusal_page_names_the_reason_and_where_its_link_leads(gw: Gateway) -> None:
    response = await gw.authorize(code_challenge=None)
    refusal_of(response)
    assert "PKCE is required" in response.text
    assert "Only follow this link if you trust app.example.com" in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_missing_resource_is_refused_with_advice(gw: Gateway) -> None:
    query = error_of(await gw.authorize(resource=None))
    assert query["error"] == "invalid_target"
    assert "resource" in query["error_description"]


async def test_two_resources_are_refused(gw: Gateway) -> None:
    params: dict[str, str | list[str]] = {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": APP_REDIRECT,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "resource": [RESOURCE, f"{ISSUER}/notion"],
    }
    query = error_of(await gw.http.get("/authorize", params=params))
    assert query["error"] == "invalid_target"
    assert "state" not in query


@pytest.fixture
async def fallback_gw() -> AsyncIterator[Gateway]:
    async for gateway in open_gateway(resource_fallback=True):
        yield gateway


async def test_missing_resource_allowed_with_fallback_gets_issuer_audience(fallback_gw: Gateway) -> None:
    state = await fallback_gw.sign_in(resource=None)
    response = await fallback_gw.callback(state)
    assert response.status_code == 200  # consent page
    assert ISSUER in response.text


async def test_happy_path_sends_the_browser_to_the_idp(gw: Gateway) -> None:
    response = await gw.authorize(resource="HTTPS://GW.example.com:443/linear/mcp/")
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    assert location.startswith("https://idp.example/authorize?")
    state = query_of(location)["state"]
    started = gw.idp.started[state]
    assert started["redirect_uri"] == CALLBACK
    assert len(started["nonce"]) >= 43
    assert 43 <= len(started["code_verifier"]) <= 128
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-mcp_front_login=")
    for attribute in ("HttpOnly", "Secure", "Path=/", "SameSite=lax"):
        assert attribute.lower() in cookie.lower()
    assert "client-state" not in location


async def test_post_form_is_accepted(gw: Gateway) -> None:
    form = {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": APP_REDIRECT,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "resource": RESOURCE,
    }
    response = await gw.http.post("/authorize", data=form)
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://idp.example/")


async def test_error_redirect_keeps_the_redirect_uri_query(gw: Gateway) -> None:
    gw.clients.clients["q"] = gw.clients.clients["app"].model_copy(
        update={"client_id": "q", "redirect_uris": ["https://app.example.com/cb?tenant=7"]}
    )
    response = await gw.authorize(
        client_id="q", redirect_uri="https://app.example.com/cb?tenant=7", resource=None
    )
    query = refusal_of(response, "https://app.example.com/cb")
    assert query["tenant"] == "7"
    assert query["error"] == "invalid_target"

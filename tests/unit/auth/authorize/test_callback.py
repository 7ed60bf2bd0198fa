"""The identity provider's callback: browser binding, single use, errors back to the client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from mcp_front.auth.sign_in_policy import SignInPolicy
from mcp_front.auth.transactions import LoginCookie
from mcp_front.idp.base import Identity, IdentityProviderError

from .conftest import APP_REDIRECT, CHALLENGE, ISSUER, RESOURCE, Gateway, open_gateway, query_of, refusal_of


def client_query(response: httpx2.Response, redirect: str = APP_REDIRECT) -> dict[str, str]:
    """What reaches the client: at once for a trusted one, through a page's link otherwise."""
    if redirect == APP_REDIRECT:
        return refusal_of(response)
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(redirect + "?")
    return query_of(response.headers["location"])


async def test_callback_without_the_login_cookie_is_refused(gw: Gateway) -> None:
    state = await gw.sign_in()
    gw.http.cookies.clear()
    response = await gw.callback(state)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "another browser" in response.text
    assert not gw.idp.completed


async def test_callback_with_another_browsers_cookie_is_refused(gw: Gateway) -> None:
    state = await gw.sign_in()
    gw.http.cookies.set("__Host-mcp_front_login", "A" * 43, domain="gw.example.com")
    response = await gw.callback(state)
    assert response.status_code == 400
    assert not gw.idp.completed


async def test_a_refused_callback_leaves_the_sign_in_to_its_own_browser(gw: Gateway) -> None:
    state = await gw.sign_in()
    own = dict(gw.http.cookies)
    gw.http.cookies.clear()
    assert (await gw.callback(state)).status_code == 400
    gw.http.cookies.update(own)
    assert (await gw.callback(state)).status_code == 200
    assert gw.idp.completed


async def test_replayed_or_unknown_state_is_an_error_page(gw: Gateway) -> None:
    state = await gw.sign_in()
    assert (await gw.callback(state)).status_code == 200
    replay = await gw.callback(state)
    assert replay.status_code == 400
    assert "already used" in replay.text
    assert (await gw.callback("made-up")).status_code == 400
    assert (await gw.http.get("/oauth/callback")).status_code == 400


async def test_idp_error_becomes_access_denied(gw: Gateway) -> None:
    state = await gw.sign_in()
    response = await gw.http.get(
        "/oauth/callback", params={"state": state, "error": "access_denied", "error_description": "<b>no</b>"}
    )
    query = client_query(response)
    assert query["error"] == "access_denied"
    assert "testidp" in query["error_description"]
    assert "<b>" not in query["error_description"]
    assert query["state"] == "client-state"
    assert query["iss"] == ISSUER


async def test_idp_server_error_becomes_server_error(gw: Gateway) -> None:
    state = await gw.sign_in()
    response = await gw.http.get(
        "/oauth/callback", params={"state": state, "error": "temporarily_unavailable"}
    )
    assert client_query(response)["error"] == "server_error"


async def test_failed_exchange_becomes_server_error_with_the_message(gw: Gateway) -> None:
    state = await gw.sign_in()
    gw.idp.failure = IdentityProviderError("network", "The identity provider could not be reached.")
    query = client_query(await gw.callback(state))
    assert query["error"] == "server_error"
    assert query["error_description"] == "The identity provider could not be reached."


async def test_hosted_domain_mismatch_is_access_denied(gw: Gateway) -> None:
    state = await gw.sign_in()
    gw.idp.failure = IdentityProviderError("hosted_domain_mismatch", "Sign in with your work account.")
    assert client_query(await gw.callback(state))["error"] == "access_denied"


async def test_policy_denial_tells_the_user_why_and_the_client_only_that(gw: Gateway) -> None:
    state = await gw.sign_in()
    gw.idp.identity = Identity(subject="mallory", email="mallory@elsewhere.org", email_verified=True)
    response = await gw.callback(state)
    assert response.status_code == 403
    assert "mallory@elsewhere.org is not a member of this organisation." in response.text
    query = client_query(response)
    assert query["error"] == "access_denied"
    assert query["error_description"] == "The user may not sign in to this gateway."
    assert "mallory" not in str(query)


async def test_a_trusted_client_hears_of_a_refusal_at_once(gw: Gateway) -> None:
    state = await gw.sign_in(client_id="trusted", redirect_uri="https://trusted.example.com/cb")
    gw.idp.identity = Identity(subject="mallory", email="mallory@elsewhere.org", email_verified=True)
    query = client_query(await gw.callback(state), "https://trusted.example.com/cb")
    assert query["error"] == "access_denied"
    assert "mallory" not in query["error_description"]


async def test_unverified_email_is_access_denied(gw: Gateway) -> None:
    state = await gw.sign_in()
    gw.idp.identity = Identity(subject="x", email="x@example.com", email_verified=False)
    response = await gw.callback(state)
    assert "not verified" in response.text
    assert client_query(response)["error"] == "access_denied"


async def test_trusted_client_gets_a_code_without_consent(gw: Gateway) -> None:
    state = await gw.sign_in(client_id="trusted", redirect_uri="https://trusted.example.com/cb")
    query = client_query(await gw.callback(state), "https://trusted.example.com/cb")
    assert set(query) == {"code", "state", "iss"}
    grant = await gw.codes.redeem(query["code"])
    assert grant is not None
    assert grant.client_id == "trusted"
    assert grant.subject == "sub-ada"
    assert grant.email == "ada@example.com"
    assert grant.groups == ("eng",)
    assert grant.resource == RESOURCE
    assert grant.code_challenge == CHALLENGE
    assert grant.redirect_uri == "https://trusted.example.com/cb"
    assert grant.scope == ("mcp",)


async def test_exchange_gets_the_transaction_values(gw: Gateway) -> None:
    state = await gw.sign_in(client_id="trusted", redirect_uri="https://trusted.example.com/cb")
    await gw.callback(state)
    (completed,) = gw.idp.completed
    assert completed["redirect_uri"] == f"{ISSUER}/oauth/callback"
    assert completed["verifier"] == gw.idp.started[state]["code_verifier"]


@pytest.fixture
async def open_policy_gw() -> AsyncIterator[Gateway]:
    async for gateway in open_gateway(policy=SignInPolicy.of(require_verified_email=False)):
        yield gateway


async def test_no_code_from_idp_is_server_error(open_policy_gw: Gateway) -> None:
    state = await open_policy_gw.sign_in()
    response = await open_policy_gw.http.get("/oauth/callback", params={"state": state})
    assert client_query(response)["error"] == "server_error"


def test_login_cookie_on_plain_http_issuer() -> None:
    cookie = LoginCookie("http://127.0.0.1:8080")
    assert cookie.name == "mcp_front_login"
    assert not cookie.secure
    assert LoginCookie("https://gw.example.com").name == "__Host-mcp_front_login"

"""Client authentication at `/token`: none, client_secret_post, client_secret_basic, exactly one."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import pytest

from .conftest import Env, assert_error

SECRET = "s3cret:with/odd+chars"


def basic(client_id: str, secret: str, *, encode: bool = True) -> dict[str, str]:
    if encode:  # RFC 6749 §2.3.1: form-urlencode each part before Base64
        client_id, secret = quote_plus(client_id), quote_plus(secret)
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def test_client_secret_basic(env: Env) -> None:
    code = await env.code(client_id="confidential")
    response = await env.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:33418/callback",
            "code_verifier": "v" * 43 + "-._~0123456789",
        },
        headers=basic("confidential", SECRET),
    )
    assert response.status_code == 200, response.text


async def test_client_secret_post(env: Env) -> None:
    code = await env.code(client_id="confidential")
    response = await env.exchange(code, client_id="confidential", client_secret=SECRET)
    assert response.status_code == 200, response.text


async def test_wrong_secret_post_is_401_without_basic_challenge(env: Env) -> None:
    code = await env.code(client_id="confidential")
    response = await env.exchange(code, client_id="confidential", client_secret="wrong")
    assert_error(response, 401, "invalid_client")
    assert "www-authenticate" not in response.headers


async def test_wrong_secret_basic_is_401_with_basic_challenge(env: Env) -> None:
    response = await env.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers=basic("confidential", "no"),
    )
    assert_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_unencoded_basic_secret_fails(env: Env) -> None:
    # '+' in an unencoded secret decodes to a space, so the secret no longer matches.
    response = await env.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers=basic("confidential", SECRET, encode=False),
    )
    assert_error(response, 401, "invalid_client")


async def test_confidential_client_without_secret(env: Env) -> None:
    response = await env.refresh_with("x", client_id="confidential")
    assert_error(response, 401, "invalid_client")


async def test_public_client_presenting_a_secret(env: Env) -> None:
    response = await env.refresh_with("x", client_secret="anything")
    assert_error(response, 401, "invalid_client")


async def test_unknown_client(env: Env) -> None:
    assert_error(await env.refresh_with("x", client_id="ghost"), 401, "invalid_client")


async def test_missing_client_authentication(env: Env) -> None:
    response = await env.http.post("/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert_error(response, 401, "invalid_client")


async def test_duplicate_client_authentication(env: Env) -> None:
    response = await env.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_secret": SECRET},
        headers=basic("confidential", SECRET),
    )
    assert_error(response, 400, "invalid_request")


async def test_basic_and_a_different_client_id_in_body(env: Env) -> None:
    response = await env.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": "public"},
        headers=basic("confidential", SECRET),
    )
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "header", ["Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer x"]
)
async def test_malformed_authorization_header(env: Env, header: str) -> None:
    response = await env.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers={"Authorization": header},
    )
    assert_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_unsupported_grant_type(env: Env) -> None:
    response = await env.http.post("/token", data={"grant_type": "password", "client_id": "public"})
    assert_error(response, 400, "unsupported_grant_type")
    response = await env.http.post("/token", data={"client_id": "public"})
    assert_error(response, 400, "invalid_request")


async def test_json_body_is_refused(env: Env) -> None:
    response = await env.http.post("/token", json={"grant_type": "refresh_token", "client_id": "public"})
    assert_error(response, 400, "invalid_request")


async def test_repeated_parameter_is_refused(env: Env) -> None:
    response = await env.http.post(
        "/token",
        content=b"grant_type=refresh_token&client_id=public&refresh_token=a&refresh_token=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 400, "invalid_request")


async def test_repeated_resource_is_invalid_target(env: Env) -> None:
    response = await env.http.post(
        "/token",
        content=b"grant_type=refresh_token&client_id=public&refresh_token=a&resource=x&resource=y",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 400, "invalid_target")


async def test_oversized_body(env: Env) -> None:
    response = await env.http.post("/token", data={"client_id": "public", "junk": "x" * 20_000})
    assert_error(response, 413, "invalid_request")


async def test_get_is_not_allowed(env: Env) -> None:
    response = await env.http.get("/token")
    assert response.status_code == 405


async def test_non_ascii_client_id_is_handled(env: Env) -> None:
    env.clients.add("clïent")
    code = await env.code()
    assert_error(await env.exchange(code, client_id="clïent"), 400, "invalid_grant")
    first = (await env.tokens())["refresh_token"]
    assert_error(await env.refresh_with(first, client_id="clïent"), 400, "invalid_grant")
    response = await env.http.post("/revoke", data={"token": first, "client_id": "clïent"})
    assert response.status_code == 200

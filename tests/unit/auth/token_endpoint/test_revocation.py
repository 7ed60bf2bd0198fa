"""`/revoke` (RFC 7009): refresh families, access-token ids, and what is never revealed."""

from __future__ import annotations

import pytest

from .conftest import LINEAR, Env, assert_error, assert_no_store


async def revoke(env: Env, token: str, client_id: str = "public", **form: str) -> None:
    response = await env.http.post("/revoke", data={"token": token, "client_id": client_id, **form})
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert_no_store(response)


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token", "something_else"])
async def test_revoking_a_refresh_token_revokes_its_family(env: Env, hint: str | None) -> None:
    first = (await env.tokens())["refresh_token"]
    second = (await env.refresh_with(first)).json()["refresh_token"]
    await revoke(env, first, **({"token_type_hint": hint} if hint else {}))
    assert_error(await env.refresh_with(second), 400, "invalid_grant")


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
async def test_revoking_an_access_token_records_its_jti(env: Env, hint: str | None) -> None:
    tokens = await env.tokens()
    jti = env.issuer.verify_access_token(tokens["access_token"], audience=LINEAR).jti
    await revoke(env, tokens["access_token"], **({"token_type_hint": hint} if hint else {}))
    assert await env.revoked.is_revoked(jti)
    assert (await env.refresh_with(tokens["refresh_token"])).status_code == 200  # family untouched


async def test_revoked_jti_is_forgotten_after_the_token_expires(env: Env) -> None:
    tokens = await env.tokens()
    jti = env.issuer.verify_access_token(tokens["access_token"], audience=LINEAR).jti
    await revoke(env, tokens["access_token"])
    env.clock.advance(3600 + 61)
    assert not await env.revoked.is_revoked(jti)


async def test_unknown_and_invalid_tokens_get_200(env: Env) -> None:
    await revoke(env, "not-a-token")
    await revoke(env, "a.b.c", token_type_hint="access_token")


async def test_tokens_of_another_client_get_200_but_stay_valid(env: Env) -> None:
    tokens = await env.tokens()
    jti = env.issuer.verify_access_token(tokens["access_token"], audience=LINEAR).jti
    await revoke(env, tokens["refresh_token"], client_id="other")
    await revoke(env, tokens["access_token"], client_id="other")
    assert not await env.revoked.is_revoked(jti)
    assert (await env.refresh_with(tokens["refresh_token"])).status_code == 200


async def test_revocation_requires_client_authentication(env: Env) -> None:
    assert_error(await env.http.post("/revoke", data={"token": "x"}), 401, "invalid_client")
    assert_error(
        await env.http.post(
            "/revoke", data={"token": "x", "client_id": "confidential", "client_secret": "no"}
        ),
        401,
        "invalid_client",
    )


async def test_missing_token(env: Env) -> None:
    assert_error(await env.http.post("/revoke", data={"client_id": "public"}), 400, "invalid_request")

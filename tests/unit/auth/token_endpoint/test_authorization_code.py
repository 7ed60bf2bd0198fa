"""`grant_type=authorization_code`: success, every refusal, and replay revocation."""

from __future__ import annotations

import pytest

from mcp_front.auth.tokens import TOKEN_TYPE

from .conftest import LINEAR, NOTION, REDIRECT, Env, assert_error, assert_no_store, challenge


async def test_exchange_issues_access_and_refresh_tokens(env: Env) -> None:
    response = await env.exchange(await env.code())
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "mcp"
    assert body["refresh_token"]  # issued even without offline_access
    claims = env.issuer.verify_access_token(body["access_token"], audience=LINEAR)
    assert (claims.subject, claims.client_id, claims.email) == ("user-1", "public", "ada@example.com")
    assert claims.extra["groups"] == ["eng"]
    import jwt

    assert jwt.get_unverified_header(body["access_token"])["typ"] == TOKEN_TYPE


@pytest.mark.parametrize("resource", [LINEAR, f"{LINEAR}/mcp", "HTTPS://GW.example.com:443/linear/"])
async def test_resource_naming_the_codes_resource_is_accepted(env: Env, resource: str) -> None:
    response = await env.exchange(await env.code(), resource=resource)
    assert response.status_code == 200, response.text


async def test_resource_other_than_the_codes_is_invalid_target(env: Env) -> None:
    assert_error(await env.exchange(await env.code(), resource=NOTION), 400, "invalid_target")
    assert_error(await env.exchange(await env.code(), resource="ftp://x/linear"), 400, "invalid_target")


async def test_wrong_pkce_verifier(env: Env) -> None:
    assert_error(await env.exchange(await env.code(), code_verifier="w" * 43), 400, "invalid_grant")


@pytest.mark.parametrize("verifier", ["short", "v" * 129, "v" * 42 + "!"])
async def test_malformed_verifier_is_refused(env: Env, verifier: str) -> None:
    code = await env.code(code_challenge=challenge(verifier))
    assert_error(await env.exchange(code, code_verifier=verifier), 400, "invalid_grant")


async def test_missing_verifier_or_code(env: Env) -> None:
    response = await env.http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": await env.code(), "client_id": "public"},
    )
    assert_error(response, 400, "invalid_request")
    response = await env.http.post(
        "/token", data={"grant_type": "authorization_code", "code_verifier": "x", "client_id": "public"}
    )
    assert_error(response, 400, "invalid_request")


async def test_redirect_uri_mismatch(env: Env) -> None:
    code = await env.code()
    assert_error(await env.exchange(code, redirect_uri=REDIRECT + "/"), 400, "invalid_grant")
    assert_error(await env.exchange(await env.code(), redirect_uri=""), 400, "invalid_grant")


async def test_code_of_another_client(env: Env) -> None:
    code = await env.code(client_id="other")
    assert_error(await env.exchange(code), 400, "invalid_grant")


async def test_unknown_code(env: Env) -> None:
    assert_error(await env.exchange("no-such-code"), 400, "invalid_grant")


async def test_expired_code(env: Env) -> None:
    code = await env.code()
    env.clock.advance(10 * 60)
    assert_error(await env.exchange(code), 400, "invalid_grant")


async def test_code_just_before_expiry_works(env: Env) -> None:
    code = await env.code()
    env.clock.advance(10 * 60 - 1)
    assert (await env.exchange(code)).status_code == 200


async def test_code_replay_fails_and_revokes_what_the_code_issued(env: Env) -> None:
    code = await env.code()
    first = await env.exchange(code)
    assert first.status_code == 200
    tokens = first.json()
    claims = env.issuer.verify_access_token(tokens["access_token"], audience=LINEAR)
    assert not await env.revoked.is_revoked(claims.jti)

    assert_error(await env.exchange(code), 400, "invalid_grant")

    assert_error(await env.refresh_with(tokens["refresh_token"]), 400, "invalid_grant")
    assert await env.revoked.is_revoked(claims.jti)


async def test_failed_attempt_consumes_the_code(env: Env) -> None:
    code = await env.code()
    assert_error(await env.exchange(code, code_verifier="w" * 43), 400, "invalid_grant")
    assert_error(await env.exchange(code), 400, "invalid_grant")


async def test_replay_during_issuance_revokes_the_tokens_being_issued(env: Env) -> None:
    code = await env.code()
    grant = await env.codes.redeem(code)
    assert grant is not None
    spent = await env.codes.replayed(code)  # a replay arrives before the first request binds
    assert spent is not None
    assert spent.family_id is None
    assert not await env.codes.bind(code, family_id="f", access_token_jti="j", access_token_expires_at=1.0)


async def test_client_not_registered_for_the_grant(env: Env) -> None:
    env.clients.add("refresh-only", grant_types=["refresh_token"])
    response = await env.exchange(await env.code(client_id="refresh-only"), client_id="refresh-only")
    assert_error(response, 400, "unauthorized_client")

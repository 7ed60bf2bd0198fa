"""`grant_type=refresh_token`: rotation, reuse detection, grace, narrowing."""

from __future__ import annotations

import asyncio

from .conftest import LINEAR, NOTION, Env, assert_error, assert_no_store


async def test_rotation_on_every_use(env: Env) -> None:
    first = (await env.tokens())["refresh_token"]
    response = await env.refresh_with(first)
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    second = body["refresh_token"]
    assert second != first
    claims = env.issuer.verify_access_token(body["access_token"], audience=LINEAR)
    assert (claims.subject, claims.scope, claims.extra["groups"]) == ("user-1", ("mcp",), ["eng"])
    third = (await env.refresh_with(second)).json()["refresh_token"]
    assert len({first, second, third}) == 3


async def test_reuse_of_an_old_token_revokes_the_whole_family(env: Env) -> None:
    first = (await env.tokens())["refresh_token"]
    second = (await env.refresh_with(first)).json()["refresh_token"]
    third = (await env.refresh_with(second)).json()["refresh_token"]
    assert_error(await env.refresh_with(first), 400, "invalid_grant")  # two generations back
    assert_error(await env.refresh_with(third), 400, "invalid_grant")  # the current one is dead too


async def test_previous_token_after_grace_revokes_the_family(env: Env) -> None:
    first = (await env.tokens())["refresh_token"]
    second = (await env.refresh_with(first)).json()["refresh_token"]
    env.clock.advance(11)
    assert_error(await env.refresh_with(first), 400, "invalid_grant")
    assert_error(await env.refresh_with(second), 400, "invalid_grant")


async def test_grace_retry_returns_the_same_successor(env: Env) -> None:
    first = (await env.tokens())["refresh_token"]
    second = (await env.refresh_with(first)).json()["refresh_token"]
    env.clock.advance(5)
    retry = await env.refresh_with(first)
    assert retry.status_code == 200, retry.text
    assert retry.json()["refresh_token"] == second
    assert (await env.refresh_with(second)).status_code == 200  # family still alive


async def test_concurrent_refreshes_agree_on_one_successor(env: Env) -> None:
    first = (await env.tokens())["refresh_token"]
    responses = await asyncio.gather(*(env.refresh_with(first) for _ in range(5)))
    assert all(r.status_code == 200 for r in responses)
    successors = {r.json()["refresh_token"] for r in responses}
    assert len(successors) == 1
    assert (await env.refresh_with(successors.pop())).status_code == 200


async def test_refresh_token_of_another_client(env: Env) -> None:
    first = (await env.tokens())["refresh_token"]
    assert_error(await env.refresh_with(first, client_id="other"), 400, "invalid_grant")
    assert (await env.refresh_with(first)).status_code == 200  # not revoked by the attempt


async def test_unknown_and_expired_refresh_tokens(env: Env) -> None:
    assert_error(await env.refresh_with("nope"), 400, "invalid_grant")
    first = (await env.tokens())["refresh_token"]
    env.clock.advance(30 * 86400)
    assert_error(await env.refresh_with(first), 400, "invalid_grant")


async def test_rotation_slides_the_lifetime(env: Env) -> None:
    token = (await env.tokens())["refresh_token"]
    for _ in range(3):
        env.clock.advance(20 * 86400)
        response = await env.refresh_with(token)
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]


async def test_resource_may_name_the_grants_resource(env: Env) -> None:
    first = (await env.tokens())["refresh_token"]
    response = await env.refresh_with(first, resource=f"{LINEAR}/mcp")
    assert response.status_code == 200, response.text
    assert env.issuer.verify_access_token(response.json()["access_token"], audience=LINEAR)


async def test_resource_outside_the_grant_is_invalid_target_and_keeps_the_token(env: Env) -> None:
    first = (await env.tokens())["refresh_token"]
    assert_error(await env.refresh_with(first, resource=NOTION), 400, "invalid_target")
    assert_error(await env.refresh_with(first, resource=f"{LINEAR}2"), 400, "invalid_target")
    assert (await env.refresh_with(first)).status_code == 200


async def test_scope_may_narrow(env: Env) -> None:
    tokens = await env.tokens()
    response = await env.refresh_with(tokens["refresh_token"], scope="mcp")
    assert response.status_code == 200
    assert response.json()["scope"] == "mcp"


async def test_scope_narrowing_applies_to_the_access_token_only(env: Env) -> None:
    code = await env.code(scope=("mcp", "read"))
    refresh = (await env.exchange(code)).json()["refresh_token"]
    narrowed = await env.refresh_with(refresh, scope="read")
    assert narrowed.json()["scope"] == "read"
    full = await env.refresh_with(narrowed.json()["refresh_token"])
    assert full.json()["scope"] == "mcp read"


async def test_scope_widening_is_refused(env: Env) -> None:
    first = (await env.tokens())["refresh_token"]
    assert_error(await env.refresh_with(first, scope="mcp admin"), 400, "invalid_scope")
    assert (await env.refresh_with(first)).status_code == 200


async def test_missing_refresh_token(env: Env) -> None:
    response = await env.http.post("/token", data={"grant_type": "refresh_token", "client_id": "public"})
    assert_error(response, 400, "invalid_request")

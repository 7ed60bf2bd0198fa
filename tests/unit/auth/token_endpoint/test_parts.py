"""The parts on their own: errors, codes, refresh families, revoked ids."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from mcp_front.auth.codes import CODES_NAMESPACE, AuthorizationCode, AuthorizationCodes
from mcp_front.auth.errors import OAuthError, invalid_client, invalid_target
from mcp_front.auth.refresh import (
    FAMILIES_NAMESPACE,
    TOKENS_NAMESPACE,
    InvalidRefreshToken,
    RefreshGrant,
    RefreshRefusal,
    RefreshTokens,
    session_of,
)
from mcp_front.auth.revocations import RevokedAccessTokens
from mcp_front.storage import MemoryStore

from .conftest import LINEAR, Clock

GRANT = RefreshGrant("user-1", "public", LINEAR, ("mcp",), "ada@example.com")


def test_error_response_shape() -> None:
    response = invalid_client('bad "secret" \\ here\n', basic=True).to_response()
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.headers["cache-control"] == "no-store"
    assert json.loads(bytes(response.body)) == {
        "error": "invalid_client",
        "error_description": "bad ?secret? ? here?",
    }
    assert invalid_target("x").status == 400
    assert OAuthError("invalid_request", "too big", 413).to_response().status_code == 413


async def test_codes_are_stored_by_digest_only() -> None:
    store = MemoryStore()
    codes = AuthorizationCodes(store)
    grant = AuthorizationCode("c", "https://r", "x" * 43, LINEAR, ("mcp",), "s", None, 0.0, nonce="n")
    code = await codes.issue(grant)
    [(key, _)] = await store.scan(CODES_NAMESPACE)
    assert code not in key
    codes_with_clock = AuthorizationCodes(store, clock=lambda: 1.0)
    assert await codes_with_clock.redeem(code) == grant
    assert await codes_with_clock.redeem(code) is None
    assert await codes.replayed("never-issued") is None


async def test_refresh_tokens_are_stored_hashed() -> None:
    store = MemoryStore()
    token, _ = await RefreshTokens(store).issue_family(GRANT)
    for namespace in (TOKENS_NAMESPACE, FAMILIES_NAMESPACE):
        for key, value in await store.scan(namespace):
            assert token not in key
            assert token.encode() not in value


async def test_revoke_family_by_token_or_id() -> None:
    store = MemoryStore()
    tokens = RefreshTokens(store)
    first, _ = await tokens.issue_family(GRANT)
    assert await tokens.revoke_family(first)
    assert not await tokens.revoke_family(first)
    second, _ = await tokens.issue_family(GRANT)
    family = await tokens.family(second)
    assert family is not None
    assert family.grant == GRANT
    assert await tokens.revoke_family(family.family_id)
    assert await tokens.family(second) is None
    assert not await tokens.revoke_family_by_id("")


@pytest.mark.parametrize(
    ("advance", "reason"), [(0, RefreshRefusal.WRONG_CLIENT), (31 * 86400, RefreshRefusal.EXPIRED)]
)
async def test_refusal_reasons(advance: float, reason: RefreshRefusal) -> None:
    clock = Clock()
    tokens = RefreshTokens(MemoryStore(clock=lambda: 0.0), clock=clock)
    token, _ = await tokens.issue_family(GRANT)
    clock.advance(advance)
    with pytest.raises(InvalidRefreshToken) as caught:
        await tokens.rotate(token, "other" if reason is RefreshRefusal.WRONG_CLIENT else "public")
    assert caught.value.reason is reason
    assert token not in str(caught.value)


async def test_reuse_reason_and_zero_grace() -> None:
    tokens = RefreshTokens(MemoryStore(), grace=timedelta(0))
    first, _ = await tokens.issue_family(GRANT)
    await tokens.rotate(first, "public")
    with pytest.raises(InvalidRefreshToken) as caught:
        await tokens.rotate(first, "public")
    assert caught.value.reason is RefreshRefusal.REUSED


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="grace"):
        RefreshTokens(MemoryStore(), grace=timedelta(days=31))
    with pytest.raises(ValueError, match="ttl"):
        AuthorizationCodes(MemoryStore(), ttl=timedelta(0))


async def test_revoking_a_family_revokes_its_session_for_the_access_token_lifetime() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    revoked = RevokedAccessTokens(store, access_token_ttl=timedelta(minutes=10), clock=clock)
    tokens = RefreshTokens(store, revoked_access_tokens=revoked, clock=clock)
    first, family = await tokens.issue_family(GRANT)
    other, other_family = await tokens.issue_family(GRANT)
    assert family.session == session_of(family.family_id)
    assert family.session != other_family.session
    assert family.family_id not in family.session
    assert not await revoked.is_revoked("any-jti", family.session)
    successor, rotated = await tokens.rotate(first, "public")
    assert rotated.session == family.session
    assert await tokens.revoke_family(successor)
    assert await revoked.is_revoked("any-jti", family.session)
    assert not await revoked.is_revoked("any-jti", other_family.session)
    assert not await revoked.is_revoked("any-jti")
    clock.advance(timedelta(minutes=10).total_seconds())
    assert await revoked.is_revoked("any-jti", family.session)
    clock.advance(timedelta(minutes=2).total_seconds())
    assert not await revoked.is_revoked("any-jti", family.session)
    # Reuse detection revokes the session too.
    await tokens.rotate(other, "public")
    clock.advance(60)
    with pytest.raises(InvalidRefreshToken):
        await tokens.rotate(other, "public")
    assert await revoked.is_revoked("any-jti", other_family.session)


async def test_zero_grace_refuses_even_an_immediate_retry() -> None:
    clock = Clock()
    tokens = RefreshTokens(MemoryStore(clock=clock), grace=timedelta(0), clock=clock)
    first, _ = await tokens.issue_family(GRANT)
    second, _ = await tokens.rotate(first, "public")
    with pytest.raises(InvalidRefreshToken):
        await tokens.rotate(first, "public")
    with pytest.raises(InvalidRefreshToken):
        await tokens.rotate(second, "public")


async def test_a_subjects_clients_are_listed_and_only_they_can_sign_one_out() -> None:
    now = [1000.0]
    tokens = RefreshTokens(MemoryStore(clock=lambda: now[0]), clock=lambda: now[0])
    first, family = await tokens.issue_family(GRANT)
    other = RefreshGrant("user-2", "other-client", LINEAR, ("mcp",), "eve@example.com")
    _, others = await tokens.issue_family(other)
    now[0] += 60
    await tokens.rotate(first, "public")

    (listed,) = await tokens.signed_in_clients("user-1")
    assert (listed.family_id, listed.client_id, listed.resource) == (family.family_id, "public", LINEAR)
    assert (listed.signed_in_at, listed.last_used) == (1000.0, 1060.0)
    assert [c.family_id for c in await tokens.signed_in_clients("user-2")] == [others.family_id]

    assert not await tokens.revoke_for_subject("user-2", family.family_id)
    assert await tokens.family(first) is not None
    assert await tokens.revoke_for_subject("user-1", family.family_id)
    assert await tokens.signed_in_clients("user-1") == []
    assert await tokens.revoke_family_by_id(others.family_id)
    assert await tokens.signed_in_clients("user-2") == []

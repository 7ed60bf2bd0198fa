"""`RevokedAccessTokens`: every replica refuses a revoked token at once, from memory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
import pytest

from mcp_front.auth.revocations import (
    REVOKED_SESSION_NAMESPACE,
    STORE_RETRY_SECONDS,
    UNCHECKED_GRACE,
    RevokedAccessTokens,
)
from mcp_front.crypto import digest
from mcp_front.storage import MemoryStore, Store, StoreUnavailable
from mcp_front.storage.notifications import LocalNotifications
from tests.support.counting_store import CountingStore


@contextlib.asynccontextmanager
async def running(revoked: RevokedAccessTokens) -> AsyncIterator[RevokedAccessTokens]:
    async with anyio.create_task_group() as group:
        group.start_soon(revoked.run)
        with anyio.fail_after(10):
            while not revoked.listening:
                await anyio.sleep(0.01)
        yield revoked
        group.cancel_scope.cancel()


class Unreachable(CountingStore):
    async def get(self, namespace: str, key: str) -> bytes | None:
        raise StoreUnavailable("Redis is unreachable: ConnectionError")


async def test_a_revocation_on_one_replica_is_refused_by_another_without_a_store_read() -> None:
    shared, notifications = MemoryStore(), LocalNotifications()
    here, there = CountingStore(shared), CountingStore(shared)
    async with (
        running(RevokedAccessTokens(here, notifications=notifications)) as mine,
        running(RevokedAccessTokens(there, notifications=notifications)) as theirs,
    ):
        before = here.total
        assert not await mine.is_revoked("jti-1", "sid-1", "client-1")
        await theirs.revoke_session("sid-1")
        await theirs.revoke_client("client-2")
        await theirs.revoke("jti-3", expires_at=10**10)
        assert await mine.is_revoked("other", "sid-1")
        assert await mine.is_revoked("other", None, "client-2")
        assert await mine.is_revoked("jti-3")
        assert not await mine.is_revoked("jti-4", "sid-4", "client-4")
        assert here.total == before


async def test_what_was_revoked_while_not_listening_is_read_at_connection() -> None:
    store = MemoryStore()
    await RevokedAccessTokens(store, notifications=LocalNotifications()).revoke_session("earlier")
    async with running(RevokedAccessTokens(store, notifications=LocalNotifications())) as revoked:
        assert await revoked.is_revoked("any", "earlier")
        assert not await revoked.is_revoked("any", "later")


async def test_not_listening_asks_the_store_and_remembers_what_it_learned() -> None:
    store = CountingStore(MemoryStore())
    revoked = RevokedAccessTokens(store)
    await store.inner.put(REVOKED_SESSION_NAMESPACE, _digest("sid"), b"1")
    assert await revoked.is_revoked("jti", "sid")
    reads = store.calls["get"]
    assert reads == 2
    assert await revoked.is_revoked("jti", "sid")
    assert store.calls["get"] == reads


async def test_an_unreachable_store_leaves_checks_to_what_is_known(caplog: pytest.LogCaptureFixture) -> None:
    store: Store = Unreachable(MemoryStore())
    revoked = RevokedAccessTokens(store)
    await revoked.revoke_session("known")
    assert await revoked.is_revoked("jti", "known")
    assert not await revoked.is_revoked("jti", "unknown")
    assert "unreachable" in caplog.text


async def test_a_record_is_forgotten_once_every_token_it_covers_has_expired() -> None:
    now = [1000.0]
    revoked = RevokedAccessTokens(
        MemoryStore(clock=lambda: now[0]), access_token_ttl=timedelta(minutes=5), clock=lambda: now[0]
    )
    await revoked.revoke("jti", expires_at=1100.0)
    assert await revoked.is_revoked("jti")
    now[0] = 1100.0 + 61
    assert not await revoked.is_revoked("jti")


def _digest(identifier: str) -> str:
    return digest(identifier).hex()


class Switchable(CountingStore):
    """A store whose server can be made unreachable."""

    down = False

    async def get(self, namespace: str, key: str) -> bytes | None:
        self.calls["get"] += 1
        if self.down:
            raise StoreUnavailable("Redis is unreachable: ConnectionError")
        return await self.inner.get(namespace, key)


async def test_a_replica_cut_off_for_long_stops_vouching_for_tokens() -> None:
    now = [1000.0]
    store = Switchable(MemoryStore(clock=lambda: now[0]))
    revoked = RevokedAccessTokens(store, clock=lambda: now[0])
    store.down = True
    assert not await revoked.is_revoked("jti")
    asked = store.calls["get"]
    now[0] += 1.0
    assert not await revoked.is_revoked("jti")
    assert store.calls["get"] == asked  # not asked again at once
    now[0] += UNCHECKED_GRACE
    with pytest.raises(StoreUnavailable, match="cannot be checked"):
        await revoked.is_revoked("jti")
    store.down = False
    now[0] += STORE_RETRY_SECONDS
    assert not await revoked.is_revoked("jti")
    store.down = True
    assert not await revoked.is_revoked("jti")  # a new outage: a new grace

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from mcp_front.storage import MemoryStore, Store
from mcp_front.storage.base import scan_all
from tests.unit.storage.conformance import FakeClock, StoreConformance


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    async def store(self, clock: FakeClock) -> AsyncIterator[Store]:
        store = MemoryStore(clock=clock)
        yield store
        await store.aclose()


async def test_emptied_namespaces_are_forgotten() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.put("ns", "k", b"v", ttl=timedelta(seconds=1))
    await store.put("other", "k", b"v")
    clock.advance(1)
    assert await store.purge_expired() == 1
    assert await store.take("other", "k") == b"v"
    assert store._namespaces == {}


async def test_scan_all_reads_every_entry_past_a_full_page() -> None:
    store = MemoryStore()
    keys = sorted(hashlib.sha256(str(n).encode()).hexdigest() for n in range(300))
    for key in keys:
        await store.put("revoked", key, key[:4].encode())
    await store.put("revoked-other", keys[0], b"x")
    found = [key async for key, _ in scan_all(store, "revoked", page=7)]
    assert found == keys
    assert [key async for key, _ in scan_all(store, "revoked", keys[5][:3], page=2)] == [
        key for key in keys if key.startswith(keys[5][:3])
    ]

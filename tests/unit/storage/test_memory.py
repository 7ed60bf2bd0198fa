from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from mcp_front.storage import MemoryStore, Store
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

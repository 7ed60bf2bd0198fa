"""`StoreRateLimiter`: token buckets every replica on one store shares."""

from __future__ import annotations

from datetime import timedelta

import anyio

from mcp_front.rate_limit import RateLimit, StoreRateLimiter
from mcp_front.storage import MemoryStore

THREE_PER_MINUTE = RateLimit(3, timedelta(minutes=1))


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_two_replicas_on_one_store_share_one_budget() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    first, second = StoreRateLimiter(store, clock=clock), StoreRateLimiter(store, clock=clock)
    assert await first.acquire("register:1.2.3.4", THREE_PER_MINUTE) == 0.0
    assert await second.acquire("register:1.2.3.4", THREE_PER_MINUTE) == 0.0
    assert await first.acquire("register:1.2.3.4", THREE_PER_MINUTE) == 0.0
    wait = await second.acquire("register:1.2.3.4", THREE_PER_MINUTE)
    assert wait == 20.0  # one token every 20 s
    assert await first.wait("register:1.2.3.4", THREE_PER_MINUTE) == 20.0
    assert await second.acquire("register:5.6.7.8", THREE_PER_MINUTE) == 0.0  # another key
    clock.now += 20
    assert await second.acquire("register:1.2.3.4", THREE_PER_MINUTE) == 0.0
    assert await first.acquire("register:1.2.3.4", THREE_PER_MINUTE) > 0


async def test_concurrent_requests_never_spend_one_token_twice() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    limiters = [StoreRateLimiter(store, clock=clock) for _ in range(4)]
    granted: list[bool] = []

    async def ask(limiter: StoreRateLimiter) -> None:
        granted.append(await limiter.acquire("token:9.9.9.9", THREE_PER_MINUTE) == 0.0)

    async with anyio.create_task_group() as group:
        for index in range(12):
            group.start_soon(ask, limiters[index % 4])
    assert granted.count(True) == 3


async def test_an_unreadable_bucket_counts_as_full() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    await store.put("rate_limits", "k", b"garbage")
    assert await StoreRateLimiter(store, clock=clock).acquire("k", THREE_PER_MINUTE) == 0.0

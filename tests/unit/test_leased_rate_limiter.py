"""`LeasedRateLimiter`: one limit for every replica, with store round trips per lease, not
per request."""

from __future__ import annotations

from datetime import timedelta

import anyio

from mcp_front.rate_limit import LeasedRateLimiter, RateLimit
from mcp_front.storage import MemoryStore
from mcp_front.storage.redis import RedisStore
from tests.support.counting_store import CountingStore
from tests.unit.storage.test_redis import prefix, reachable  # noqa: F401 - a fixture


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_two_replicas_never_admit_more_than_the_limit_and_rarely_ask_the_store(
    prefix: str,  # noqa: F811 - the fixture imported above
) -> None:
    stores = [CountingStore(RedisStore(await reachable(), prefix=prefix)) for _ in range(2)]
    replicas = [LeasedRateLimiter(store) for store in stores]
    limit = RateLimit(200, timedelta(minutes=1))
    admitted = 0
    requests = 0
    try:

        async def caller(limiter: LeasedRateLimiter) -> None:
            nonlocal admitted, requests
            for _ in range(150):
                requests += 1
                if await limiter.acquire("mcp:probe/ada", limit) == 0.0:
                    admitted += 1

        async with anyio.create_task_group() as group:
            for limiter in replicas:
                for _ in range(3):
                    group.start_soon(caller, limiter)
    finally:
        for store in stores:
            await store.aclose()
    assert requests == 900
    # The deployment admits the limit at most (a few seconds of refill at most on a busy
    # machine), and little less: only lapsed leases' leftovers are lost.
    assert 150 <= admitted <= 200 + 20
    round_trips = sum(store.total for store in stores)
    assert round_trips < requests / 4


async def test_a_slow_caller_is_never_starved_by_leases() -> None:
    """One request every two seconds against one a second: each lease is a single token,
    so nothing is wasted and every request passes."""
    clock = Clock()
    limiter = LeasedRateLimiter(MemoryStore(clock=clock), clock=clock, shared_clock=clock)
    limit = RateLimit(60, timedelta(minutes=1))
    for _ in range(200):
        assert await limiter.acquire("mcp:probe/slow", limit) == 0.0
        clock.now += 2.0


async def test_a_burst_past_the_limit_is_told_when_to_come_back() -> None:
    clock = Clock()
    limiter = LeasedRateLimiter(MemoryStore(clock=clock), clock=clock, shared_clock=clock)
    limit = RateLimit(10, timedelta(minutes=1))
    waits = [await limiter.acquire("mcp:probe/burst", limit) for _ in range(12)]
    assert waits[:10] == [0.0] * 10
    assert waits[10] > 0
    assert await limiter.wait("mcp:probe/burst", limit) > 0
    clock.now += 6.0  # one request's worth of refill
    assert await limiter.acquire("mcp:probe/burst", limit) == 0.0

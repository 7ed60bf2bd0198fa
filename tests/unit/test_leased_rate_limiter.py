"""`LeasedRateLimiter`: one limit for every replica, with store round trips per lease, not
per request."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import anyio
import pytest

from mcp_front.rate_limit import LeasedRateLimiter, RateLimit, StoreRateLimiter
from mcp_front.storage import MemoryStore, Store
from mcp_front.storage.postgres import PostgresStore
from mcp_front.storage.redis import RedisStore
from tests.support.counting_store import CountingStore
from tests.unit.storage.test_postgres import database  # noqa: F401 - a fixture
from tests.unit.storage.test_redis import prefix, reachable  # noqa: F401 - a fixture


@pytest.fixture(params=["redis", "postgres"])
async def open_store(
    request: pytest.FixtureRequest,
    prefix: str,  # noqa: F811 - the fixture imported above
    database: str,  # noqa: F811 - the fixture imported above
) -> AsyncIterator[Callable[[], Awaitable[Store]]]:
    """Opens connections of their own to one shared store, as replicas do."""
    opened: list[Store] = []

    async def open_one() -> Store:
        if request.param == "redis":
            found: Store = RedisStore(await reachable(), prefix=prefix)
        else:
            found = await PostgresStore.open(database)
        opened.append(found)
        return found

    yield open_one
    for store in opened:
        await store.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_two_replicas_never_admit_more_than_the_limit_and_rarely_ask_the_store(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    stores = [CountingStore(await open_store()) for _ in range(2)]
    replicas = [LeasedRateLimiter(store) for store in stores]
    limit = RateLimit(200, timedelta(minutes=1))
    key = f"mcp:probe/{secrets.token_hex(4)}"  # the PostgreSQL database is the module's
    admitted = 0
    requests = 0

    async def caller(limiter: LeasedRateLimiter) -> None:
        nonlocal admitted, requests
        for _ in range(150):
            requests += 1
            if await limiter.acquire(key, limit) == 0.0:
                admitted += 1

    async with anyio.create_task_group() as group:
        for limiter in replicas:
            for _ in range(3):
                group.start_soon(caller, limiter)
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


async def test_a_bucket_only_this_replica_spends_costs_one_round_trip_per_lease() -> None:
    clock = Clock()
    store = CountingStore(MemoryStore(clock=clock))
    limiter = StoreRateLimiter(store, clock=clock)
    limit = RateLimit(10, timedelta(minutes=1))
    assert await limiter.acquire("mcp:probe/ada", limit) == 0.0
    assert store.total == 2  # the first read, then the swap
    for _ in range(9):
        assert await limiter.acquire("mcp:probe/ada", limit) == 0.0
    assert store.total == 2 + 9  # a swap each, no read
    assert await limiter.acquire("mcp:probe/ada", limit) > 0
    assert store.total == 11  # refused from the bucket it wrote: empty whatever others did


async def test_a_remembered_bucket_another_replica_spent_from_is_read_again(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    first, second = StoreRateLimiter(await open_store()), StoreRateLimiter(await open_store())
    limit = RateLimit(4, timedelta(minutes=1))
    key = f"mcp:probe/{secrets.token_hex(4)}"  # the PostgreSQL database is the module's
    assert await first.acquire(key, limit) == 0.0
    assert await second.take(key, limit, 3) == (3, 0.0)
    # The bucket `first` remembers has three tokens; the store's has none: the swap fails,
    # `first` reads the bucket again and is refused.
    assert await first.acquire(key, limit) > 0

"""`StoreRateLimiter`: token buckets every replica on one store shares."""

from __future__ import annotations

from datetime import timedelta

import anyio

from mcp_front.auth.resource import FailedAuthentications
from mcp_front.rate_limit import RateLimit, StoreRateLimiter
from mcp_front.storage import MemoryStore
from mcp_front.storage.redis import RedisStore
from tests.unit.storage.test_redis import prefix, reachable  # noqa: F401 - a fixture

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


class Refusing:
    """A limiter that fails the test when asked anything."""

    async def acquire(self, key: str, limit: RateLimit) -> float:
        raise AssertionError("asked the limiter")

    async def wait(self, key: str, limit: RateLimit) -> float:
        raise AssertionError("asked the limiter")


async def test_a_credential_that_proved_right_is_not_counted_again() -> None:
    failures = FailedAuthentications(Refusing(), THREE_PER_MINUTE)
    assert not failures.vouched("Bearer right")
    failures.vouch("Bearer right")
    assert failures.vouched("Bearer right")
    assert not failures.vouched("Bearer wrong")


async def test_the_attempt_past_the_budget_holds_the_address_back_in_memory() -> None:
    clock = Clock()
    limiter = StoreRateLimiter(MemoryStore(clock=clock), clock=clock)
    failures = FailedAuthentications(limiter, THREE_PER_MINUTE, clock=clock)
    scope = {"client": ("1.2.3.4", 5)}
    assert [await failures.admit(scope) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await failures.admit(scope) == 20.0
    failures.limiter = Refusing()  # held back: the limiter is not asked again
    assert await failures.admit(scope) == 20.0
    failures.limiter = limiter
    assert await failures.admit({"client": ("5.6.7.8", 5)}) == 0.0
    clock.now += 20
    assert await failures.admit(scope) == 0.0


async def test_a_burst_within_the_limit_is_admitted_whole_on_a_real_store(
    prefix: str,  # noqa: F811 - the fixture imported above
) -> None:
    """Thirty requests of one address at once, on Redis: every one of them fits the limit,
    so none may be refused for losing compare-and-set races to the others."""
    store = RedisStore(await reachable(), prefix=prefix)
    try:
        limiter = StoreRateLimiter(store)
        limit = RateLimit(100, timedelta(minutes=1))
        waits: list[float] = []

        async def request() -> None:
            waits.append(await limiter.acquire("token:1.2.3.4", limit))

        async with anyio.create_task_group() as group:
            for _ in range(30):
                group.start_soon(request)
        assert waits == [0.0] * 30
    finally:
        await store.aclose()

"""`RedisStore` against the machine's Redis (127.0.0.1:6379), each test under its own prefix."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from mcp_front.storage import Store
from mcp_front.storage.redis import RedisStore
from tests.support.relay import outage_and_recovery, relay_to
from tests.unit.storage.conformance import FakeClock, StoreConformance

REDIS_URL = os.environ.get("MCP_FRONT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def reachable() -> Redis:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisConnectionError, OSError) as error:
        await client.aclose()
        message = f"Redis is not running at {REDIS_URL} ({error}); start it (see the env skill)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return client


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    chosen = f"mcp-front-test-{secrets.token_hex(6)}:"
    yield chosen
    client = await reachable()
    try:
        async for key in client.scan_iter(match=f"{chosen}*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


class TestRedisStore(StoreConformance):
    @pytest.fixture
    async def store(self, clock: FakeClock, prefix: str) -> AsyncIterator[Store]:
        client = await reachable()
        found = RedisStore(client, prefix=prefix, clock=clock)
        yield found
        await found.aclose()


async def test_redis_reclaims_an_entry_after_its_lifetime(prefix: str) -> None:
    client = await reachable()
    store = RedisStore(client, prefix=prefix)
    try:
        await store.put("codes", "c1", b"x", ttl=timedelta(seconds=5))
        await store.put("clients", "k", b"y")
        ttl_ms = await client.pttl(f"{prefix}e:codes\x00c1".encode())
        assert 5_000 < ttl_ms <= 65_000
        assert await client.pttl(f"{prefix}e:clients\x00k".encode()) == -1
    finally:
        await store.aclose()


async def test_two_stores_on_one_redis_see_each_others_writes(prefix: str) -> None:
    first, second = RedisStore(await reachable(), prefix=prefix), RedisStore(await reachable(), prefix=prefix)
    try:
        assert await first.add("codes", "shared", b"1")
        assert not await second.add("codes", "shared", b"2")
        assert await second.take("codes", "shared") == b"1"
        assert await first.take("codes", "shared") is None
    finally:
        await first.aclose()
        await second.aclose()


async def test_an_unreachable_redis_is_reported_and_the_store_recovers(prefix: str) -> None:
    await (await reachable()).aclose()
    host, port = REDIS_URL.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    with relay_to(host, int(port)) as relay:
        store = RedisStore.from_url(f"redis://127.0.0.1:{relay.port}/0", prefix=prefix)
        await outage_and_recovery(store, relay, "Redis")

"""The conformance suite every `Store` must pass.

A store's test module subclasses `StoreConformance` and provides a `store` fixture that
builds the store on the given `clock` (a `FakeClock`, so expiry is tested without
sleeping). The module's name does not start with `test_`, so the suite runs only through
its subclasses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import anyio
import pytest

from mcp_front.storage import Store

NS = "ns"
MiB = 1024 * 1024


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class StoreConformance:
    """The behaviour every `Store` shares; subclasses override the `store` fixture."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    async def store(self, clock: FakeClock) -> Store:
        raise NotImplementedError("a store's test class provides the store fixture")

    # -- get, put, delete ---------------------------------------------------------------

    async def test_implements_the_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)

    async def test_get_of_a_missing_key_is_none(self, store: Store) -> None:
        assert await store.get(NS, "missing") is None

    async def test_put_then_get(self, store: Store) -> None:
        await store.put(NS, "k", b"v")
        assert await store.get(NS, "k") == b"v"

    async def test_put_overwrites_value_and_expiry(self, store: Store, clock: FakeClock) -> None:
        await store.put(NS, "k", b"old", ttl=timedelta(seconds=10))
        await store.put(NS, "k", b"new")
        clock.advance(3600)
        assert await store.get(NS, "k") == b"new"
        await store.put(NS, "k", b"newer", ttl=timedelta(seconds=10))
        clock.advance(11)
        assert await store.get(NS, "k") is None

    async def test_namespaces_are_separate(self, store: Store) -> None:
        await store.put("a", "k", b"in a")
        await store.put("b", "k", b"in b")
        assert await store.get("a", "k") == b"in a"
        assert await store.get("b", "k") == b"in b"
        assert await store.delete("a", "k")
        assert await store.get("b", "k") == b"in b"
        assert await store.scan("a") == []

    async def test_delete(self, store: Store) -> None:
        await store.put(NS, "k", b"v")
        assert await store.delete(NS, "k") is True
        assert await store.get(NS, "k") is None
        assert await store.delete(NS, "k") is False

    # -- expiry ---------------------------------------------------------------------------

    async def test_entry_lives_until_its_ttl_passes(self, store: Store, clock: FakeClock) -> None:
        await store.put(NS, "k", b"v", ttl=timedelta(seconds=60))
        clock.advance(59.5)
        assert await store.get(NS, "k") == b"v"
        clock.advance(0.5)
        assert await store.get(NS, "k") is None

    async def test_expired_entries_are_invisible_to_every_operation(
        self, store: Store, clock: FakeClock
    ) -> None:
        for key in ("get", "take", "delete", "cas", "scan-me"):
            await store.put(NS, key, b"v", ttl=timedelta(seconds=1))
        clock.advance(2)
        assert await store.get(NS, "get") is None
        assert await store.take(NS, "take") is None
        assert await store.delete(NS, "delete") is False
        assert await store.compare_and_set(NS, "cas", b"v", b"w") is False
        assert await store.scan(NS) == []

    async def test_add_after_expiry_inserts(self, store: Store, clock: FakeClock) -> None:
        assert await store.add(NS, "k", b"first", ttl=timedelta(seconds=5))
        assert not await store.add(NS, "k", b"second")
        clock.advance(5)
        assert await store.add(NS, "k", b"third")
        assert await store.get(NS, "k") == b"third"
        clock.advance(10**6)
        assert await store.get(NS, "k") == b"third", "the new entry must not inherit the old expiry"

    async def test_cas_from_absent_after_expiry(self, store: Store, clock: FakeClock) -> None:
        await store.put(NS, "k", b"v", ttl=timedelta(seconds=1))
        assert not await store.compare_and_set(NS, "k", None, b"w")
        clock.advance(1)
        assert await store.compare_and_set(NS, "k", None, b"w")
        assert await store.get(NS, "k") == b"w"

    async def test_purge_expired(self, store: Store, clock: FakeClock) -> None:
        await store.put(NS, "short", b"v", ttl=timedelta(seconds=1))
        await store.put("other", "short", b"v", ttl=timedelta(seconds=1))
        await store.put(NS, "long", b"v", ttl=timedelta(hours=1))
        await store.put(NS, "forever", b"v")
        assert await store.purge_expired() == 0
        clock.advance(2)
        assert await store.purge_expired() == 2
        assert await store.purge_expired() == 0
        assert [key for key, _ in await store.scan(NS)] == ["forever", "long"]

    @pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1)])
    async def test_non_positive_ttl_is_refused(self, store: Store, ttl: timedelta) -> None:
        with pytest.raises(ValueError, match="ttl"):
            await store.put(NS, "k", b"v", ttl=ttl)
        with pytest.raises(ValueError, match="ttl"):
            await store.add(NS, "k", b"v", ttl=ttl)
        with pytest.raises(ValueError, match="ttl"):
            await store.compare_and_set(NS, "k", None, b"v", ttl=ttl)
        assert await store.get(NS, "k") is None

    async def test_sub_second_ttl(self, store: Store, clock: FakeClock) -> None:
        await store.put(NS, "k", b"v", ttl=timedelta(milliseconds=250))
        clock.advance(0.2)
        assert await store.get(NS, "k") == b"v"
        clock.advance(0.1)
        assert await store.get(NS, "k") is None

    # -- add ------------------------------------------------------------------------------

    async def test_add_inserts_only_if_absent(self, store: Store) -> None:
        assert await store.add(NS, "k", b"first") is True
        assert await store.add(NS, "k", b"second") is False
        assert await store.get(NS, "k") == b"first"

    async def test_concurrent_adds_insert_once(self, store: Store) -> None:
        wins: list[bytes] = []

        async def add(value: bytes) -> None:
            if await store.add(NS, "k", value):
                wins.append(value)

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(add, b"%d" % i)
        assert len(wins) == 1
        assert await store.get(NS, "k") == wins[0]

    # -- take -----------------------------------------------------------------------------

    async def test_take_returns_and_removes(self, store: Store) -> None:
        await store.put(NS, "code", b"grant")
        assert await store.take(NS, "code") == b"grant"
        assert await store.take(NS, "code") is None
        assert await store.get(NS, "code") is None

    async def test_take_of_a_missing_key_is_none(self, store: Store) -> None:
        assert await store.take(NS, "missing") is None

    async def test_concurrent_takes_have_exactly_one_winner(self, store: Store) -> None:
        await store.put(NS, "code", b"grant", ttl=timedelta(minutes=1))
        results: list[bytes | None] = []

        async def take() -> None:
            results.append(await store.take(NS, "code"))

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(take)
        assert len(results) == 50
        assert results.count(b"grant") == 1
        assert results.count(None) == 49

    # -- compare_and_set ------------------------------------------------------------------

    async def test_cas_swaps_only_on_a_match(self, store: Store) -> None:
        await store.put(NS, "k", b"one")
        assert await store.compare_and_set(NS, "k", b"other", b"two") is False
        assert await store.get(NS, "k") == b"one"
        assert await store.compare_and_set(NS, "k", b"one", b"two") is True
        assert await store.get(NS, "k") == b"two"

    async def test_cas_expected_none_means_absent(self, store: Store) -> None:
        assert await store.compare_and_set(NS, "k", None, b"one") is True
        assert await store.compare_and_set(NS, "k", None, b"two") is False
        assert await store.get(NS, "k") == b"one"

    async def test_cas_new_none_deletes(self, store: Store) -> None:
        await store.put(NS, "k", b"one")
        assert await store.compare_and_set(NS, "k", b"two", None) is False
        assert await store.compare_and_set(NS, "k", b"one", None) is True
        assert await store.get(NS, "k") is None
        assert await store.compare_and_set(NS, "k", None, None) is True
        assert await store.scan(NS) == []

    async def test_cas_sets_the_ttl_of_the_new_value(self, store: Store, clock: FakeClock) -> None:
        await store.put(NS, "k", b"one")
        assert await store.compare_and_set(NS, "k", b"one", b"two", ttl=timedelta(seconds=30))
        clock.advance(29)
        assert await store.get(NS, "k") == b"two"
        clock.advance(1)
        assert await store.get(NS, "k") is None

    async def test_cas_without_ttl_makes_a_lasting_value(self, store: Store, clock: FakeClock) -> None:
        await store.put(NS, "k", b"one", ttl=timedelta(seconds=30))
        assert await store.compare_and_set(NS, "k", b"one", b"two")
        clock.advance(3600)
        assert await store.get(NS, "k") == b"two"

    async def test_concurrent_cas_from_one_value_has_exactly_one_winner(self, store: Store) -> None:
        await store.put(NS, "family", b"generation-0")
        winners: list[int] = []

        async def rotate(i: int) -> None:
            if await store.compare_and_set(NS, "family", b"generation-0", b"generation-1/%d" % i):
                winners.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(rotate, i)
        assert len(winners) == 1
        assert await store.get(NS, "family") == b"generation-1/%d" % winners[0]

    async def test_concurrent_cas_from_absent_has_exactly_one_winner(self, store: Store) -> None:
        winners: list[int] = []

        async def create(i: int) -> None:
            if await store.compare_and_set(NS, "k", None, b"%d" % i):
                winners.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(create, i)
        assert len(winners) == 1

    # -- scan -----------------------------------------------------------------------------

    async def test_scan_sorts_by_key_and_filters_by_prefix(self, store: Store) -> None:
        for key in ["user:b", "user:a", "client:z", "user:c", "user", "userx"]:
            await store.put(NS, key, key.encode())
        await store.put("elsewhere", "user:0", b"not here")
        assert await store.scan(NS, "user:") == [(k, k.encode()) for k in ["user:a", "user:b", "user:c"]]
        assert [k for k, _ in await store.scan(NS)] == [
            "client:z",
            "user",
            "user:a",
            "user:b",
            "user:c",
            "userx",
        ]
        assert await store.scan(NS, "nothing") == []
        assert await store.scan("empty-namespace") == []

    async def test_scan_orders_by_code_point(self, store: Store) -> None:
        keys = ["a", "B", "é", "z", "ß", "日本", "\U0001f600", "\ud7ff", "\ue000", "a\U0010ffff"]
        for key in keys:
            await store.put(NS, key, b"")
        assert [k for k, _ in await store.scan(NS)] == sorted(keys)

    async def test_scan_prefix_with_the_highest_characters(self, store: Store) -> None:
        keys = ["\U0010ffff", "\U0010ffffa", "\U0010ffff\U0010ffff", "x\ud7ff", "x\ud7ffy", "x\ue000"]
        for key in keys:
            await store.put(NS, key, b"")
        assert [k for k, _ in await store.scan(NS, "\U0010ffff")] == sorted(keys[:3])
        assert [k for k, _ in await store.scan(NS, "x\ud7ff")] == ["x\ud7ff", "x\ud7ffy"]

    async def test_scan_limit(self, store: Store) -> None:
        for i in range(30):
            await store.put(NS, f"k{i:02d}", b"")
        assert [k for k, _ in await store.scan(NS, limit=3)] == ["k00", "k01", "k02"]
        assert [k for k, _ in await store.scan(NS, "k1", limit=2)] == ["k10", "k11"]
        assert len(await store.scan(NS)) == 30

    async def test_scan_default_limit_is_1000(self, store: Store) -> None:
        for i in range(1001):
            await store.put(NS, f"k{i:04d}", b"")
        entries = await store.scan(NS)
        assert len(entries) == 1000
        assert entries[-1][0] == "k0999"

    @pytest.mark.parametrize("limit", [0, -1])
    async def test_scan_refuses_a_non_positive_limit(self, store: Store, limit: int) -> None:
        with pytest.raises(ValueError, match="limit"):
            await store.scan(NS, limit=limit)

    # -- values ---------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "value",
        [b"", b"\x00", b"a\x00b\x00", bytes(range(256)), b"\xff\xfe not utf-8 \x80"],
        ids=["empty", "nul", "nuls", "all-bytes", "not-utf8"],
    )
    async def test_binary_values_round_trip(self, store: Store, value: bytes) -> None:
        await store.put(NS, "k", value)
        assert await store.get(NS, "k") == value
        assert await store.scan(NS) == [("k", value)]
        assert await store.compare_and_set(NS, "k", value, value + b"\x00")
        assert await store.take(NS, "k") == value + b"\x00"

    async def test_one_mebibyte_values(self, store: Store) -> None:
        value = bytes(i % 251 for i in range(MiB))
        await store.put(NS, "big", value)
        assert await store.get(NS, "big") == value
        assert await store.compare_and_set(NS, "big", value, value[::-1])
        assert await store.take(NS, "big") == value[::-1]

    async def test_empty_value_is_not_absent(self, store: Store) -> None:
        await store.put(NS, "k", b"")
        assert await store.get(NS, "k") == b""
        assert not await store.add(NS, "k", b"x")
        assert not await store.compare_and_set(NS, "k", None, b"x")
        assert await store.compare_and_set(NS, "k", b"", b"x")

    async def test_unicode_names(self, store: Store) -> None:
        await store.put("名前空間", "clé/🔑 with spaces", b"v")
        assert await store.get("名前空間", "clé/🔑 with spaces") == b"v"

    # -- validation -----------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("namespace", "key", "message"),
        [
            ("", "k", "namespace must not be empty"),
            ("ns", "", "key must not be empty"),
            ("n\x00s", "k", "namespace must not contain a NUL"),
            ("ns", "k\x00", "key must not contain a NUL"),
            ("ns", "\ud800", "key must be valid Unicode"),
        ],
    )
    async def test_invalid_names_are_refused(
        self, store: Store, namespace: str, key: str, message: str
    ) -> None:
        operations: list[Callable[[], Awaitable[object]]] = [
            lambda: store.get(namespace, key),
            lambda: store.put(namespace, key, b"v"),
            lambda: store.add(namespace, key, b"v"),
            lambda: store.take(namespace, key),
            lambda: store.compare_and_set(namespace, key, None, b"v"),
            lambda: store.delete(namespace, key),
        ]
        for operation in operations:
            with pytest.raises(ValueError, match=message):
                await operation()

    async def test_invalid_scan_arguments_are_refused(self, store: Store) -> None:
        with pytest.raises(ValueError, match="namespace must not be empty"):
            await store.scan("")
        with pytest.raises(ValueError, match="prefix must not contain a NUL"):
            await store.scan(NS, "a\x00")

    async def test_values_must_be_bytes(self, store: Store) -> None:
        with pytest.raises(TypeError, match="value must be bytes"):
            await store.put(NS, "k", "text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="value must be bytes"):
            await store.add(NS, "k", "text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="new must be bytes"):
            await store.compare_and_set(NS, "k", None, "text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="expected must be bytes"):
            await store.compare_and_set(NS, "k", "text", b"v")  # type: ignore[arg-type]
        assert await store.get(NS, "k") is None

    # -- lifecycle ------------------------------------------------------------------------

    async def test_closed_store_refuses_operations(self, store: Store) -> None:
        await store.put(NS, "k", b"v")
        await store.aclose()
        await store.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await store.get(NS, "k")
        with pytest.raises(RuntimeError, match="closed"):
            await store.purge_expired()

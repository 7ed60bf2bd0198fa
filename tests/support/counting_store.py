"""A `Store` that counts the operations made on the store it wraps: round trips made visible."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from mcp_front.storage import DEFAULT_SCAN_LIMIT, Store


class CountingStore:
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    async def get(self, namespace: str, key: str) -> bytes | None:
        self.calls["get"] += 1
        return await self.inner.get(namespace, key)

    async def put(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> None:
        self.calls["put"] += 1
        await self.inner.put(namespace, key, value, ttl=ttl)

    async def add(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> bool:
        self.calls["add"] += 1
        return await self.inner.add(namespace, key, value, ttl=ttl)

    async def take(self, namespace: str, key: str) -> bytes | None:
        self.calls["take"] += 1
        return await self.inner.take(namespace, key)

    async def compare_and_set(
        self,
        namespace: str,
        key: str,
        expected: bytes | None,
        new: bytes | None,
        *,
        ttl: timedelta | None = None,
    ) -> bool:
        self.calls["compare_and_set"] += 1
        return await self.inner.compare_and_set(namespace, key, expected, new, ttl=ttl)

    async def delete(self, namespace: str, key: str) -> bool:
        self.calls["delete"] += 1
        return await self.inner.delete(namespace, key)

    async def scan(
        self, namespace: str, prefix: str = "", *, limit: int = DEFAULT_SCAN_LIMIT
    ) -> list[tuple[str, bytes]]:
        self.calls["scan"] += 1
        return await self.inner.scan(namespace, prefix, limit=limit)

    async def purge_expired(self) -> int:
        return await self.inner.purge_expired()

    async def aclose(self) -> None:
        await self.inner.aclose()

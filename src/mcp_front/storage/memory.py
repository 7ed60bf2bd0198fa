"""`MemoryStore`: the `Store` in a dictionary, for tests and single-process trials.

Nothing survives a restart and nothing bounds its size (expired entries stay until
`purge_expired`), so it is not meant for production. Every operation runs without an
await point, so it is atomic on the one event loop that uses the store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from mcp_front.storage.base import (
    DEFAULT_SCAN_LIMIT,
    Clock,
    check_entry,
    check_limit,
    check_name,
    check_value,
    expiry,
    is_live,
)


@dataclass(frozen=True, slots=True)
class _Entry:
    value: bytes
    expires_at: float | None


class MemoryStore:
    """A `Store` kept in process memory."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._namespaces: dict[str, dict[str, _Entry]] = {}
        self._closed = False

    def _live(self, namespace: str, key: str) -> _Entry | None:
        """The live entry under `key`, after validating the address and the store's state."""
        if self._closed:
            raise RuntimeError("the store is closed")
        check_entry(namespace, key)
        entry = self._namespaces.get(namespace, {}).get(key)
        if entry is None or not is_live(entry.expires_at, self._clock()):
            return None
        return entry

    def _set(self, namespace: str, key: str, value: bytes, ttl: timedelta | None) -> None:
        entry = _Entry(value, expiry(self._clock(), ttl))
        self._namespaces.setdefault(namespace, {})[key] = entry

    def _remove(self, namespace: str, key: str) -> None:
        entries = self._namespaces.get(namespace)
        if entries is not None:
            entries.pop(key, None)
            if not entries:
                del self._namespaces[namespace]

    async def get(self, namespace: str, key: str) -> bytes | None:
        entry = self._live(namespace, key)
        return None if entry is None else entry.value

    async def put(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> None:
        self._live(namespace, key)
        check_value("value", value)
        self._set(namespace, key, value, ttl)

    async def add(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> bool:
        existing = self._live(namespace, key)
        check_value("value", value)
        if existing is not None:
            expiry(0.0, ttl)  # validate ttl even when nothing is stored
            return False
        self._set(namespace, key, value, ttl)
        return True

    async def take(self, namespace: str, key: str) -> bytes | None:
        entry = self._live(namespace, key)
        if entry is None:
            return None
        self._remove(namespace, key)
        return entry.value

    async def compare_and_set(
        self,
        namespace: str,
        key: str,
        expected: bytes | None,
        new: bytes | None,
        *,
        ttl: timedelta | None = None,
    ) -> bool:
        entry = self._live(namespace, key)
        check_value("expected", expected, optional=True)
        check_value("new", new, optional=True)
        expiry(0.0, ttl)  # validate ttl before deciding anything
        current = None if entry is None else entry.value
        if current != expected:
            return False
        if new is None:
            self._remove(namespace, key)
        else:
            self._set(namespace, key, new, ttl)
        return True

    async def delete(self, namespace: str, key: str) -> bool:
        entry = self._live(namespace, key)
        self._remove(namespace, key)
        return entry is not None

    async def scan(
        self, namespace: str, prefix: str = "", *, limit: int = DEFAULT_SCAN_LIMIT
    ) -> list[tuple[str, bytes]]:
        self._live(namespace, "-")
        check_name("prefix", prefix)
        check_limit(limit)
        now = self._clock()
        entries = self._namespaces.get(namespace, {})
        keys = sorted(
            key for key, entry in entries.items() if key.startswith(prefix) and is_live(entry.expires_at, now)
        )
        return [(key, entries[key].value) for key in keys[:limit]]

    async def purge_expired(self) -> int:
        if self._closed:
            raise RuntimeError("the store is closed")
        now = self._clock()
        removed = 0
        for namespace, entries in list(self._namespaces.items()):
            for key in [key for key, entry in entries.items() if not is_live(entry.expires_at, now)]:
                del entries[key]
                removed += 1
            if not entries:
                del self._namespaces[namespace]
        return removed

    async def aclose(self) -> None:
        self._closed = True
        self._namespaces.clear()

"""Rate limits: token buckets keyed by who asks (an address, a host, everyone).

A `RateLimit` of `requests` per `per` lets a caller spend up to `requests` at once and
refills at that rate, so a burst after a quiet spell passes and a flood is held to the
rate. `RateLimiter` is the protocol the gateway's endpoints use; `MemoryRateLimiter` keeps
the buckets of one process, forgetting the least recently used key past `max_keys`, so
the memory it takes is bounded whatever a flood sends.

Callers are counted by `address_key`: an IPv4 address, or the /64 network of an IPv6 one,
since a single host is routinely given a whole /64.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import anyio

from mcp_front.storage.base import Store, StoreUnavailable

logger = logging.getLogger("mcp_front.rate_limit")

__all__ = ["MemoryRateLimiter", "RateLimit", "RateLimiter", "StoreRateLimiter", "address_key", "network_key"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `requests` per `per`, in bursts of up to `requests`."""

    requests: int
    per: timedelta

    def __post_init__(self) -> None:
        if self.requests < 1:
            raise ValueError("a rate limit allows at least one request")
        if self.per <= timedelta(0):
            raise ValueError("a rate limit's period must be positive")

    @property
    def rate(self) -> float:
        """Requests regained per second."""
        return self.requests / self.per.total_seconds()


class RateLimiter(Protocol):
    """Counts requests against limits, per key."""

    async def acquire(self, key: str, limit: RateLimit) -> float:
        """Count one request under `key`: 0 if `limit` allows it, else the seconds until it
        would (the request is then not counted)."""
        ...

    async def wait(self, key: str, limit: RateLimit) -> float:
        """The seconds until `limit` would allow a request under `key`, counting nothing."""
        ...


class MemoryRateLimiter:
    """Token buckets in this process's memory: exact for one replica."""

    def __init__(self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        self._max_keys = max_keys
        self._clock = clock
        # key → (tokens left, when they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def acquire(self, key: str, limit: RateLimit) -> float:
        return self.acquire_now(key, limit)

    async def wait(self, key: str, limit: RateLimit) -> float:
        tokens = self._tokens(key, limit, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / limit.rate

    def _tokens(self, key: str, limit: RateLimit, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(limit.requests)
        left, counted = bucket
        return min(float(limit.requests), left + (now - counted) * limit.rate)

    def acquire_now(self, key: str, limit: RateLimit) -> float:
        """`acquire` without awaiting, for callers outside a coroutine."""
        now = self._clock()
        tokens = self._tokens(key, limit, now)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            return (1.0 - tokens) / limit.rate
        self._buckets[key] = (tokens - 1.0, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return 0.0


@functools.lru_cache(maxsize=4096)
def address_key(host: str | None) -> str:
    """Who a request counts against: its IPv4 address, or its IPv6 address's /64.

    An IPv4-mapped IPv6 address counts as the IPv4 address; everything that is not an IP
    address counts as one and the same caller.
    """
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        # Whatever is not an address (a forwarded header's junk, a Unix socket) counts as one.
        return "not-an-address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def network_key(address: str) -> str:
    """The wider network an `address_key` belongs to: its IPv4 /24 or its IPv6 /48, what one
    party can cheaply hold many addresses of."""
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return address
    prefix = 24 if network.version == 4 else 48
    return str(network.supernet(new_prefix=prefix)) if network.prefixlen > prefix else str(network)


_SHARED_NAMESPACE = "rate_limits"
_SHARED_ATTEMPTS = 8


class StoreRateLimiter:
    """Token buckets in the gateway's `Store`: one limit for every replica on that store.

    A bucket is `tokens,counted_at` (wall-clock seconds, shared by every replica) under its
    key, swapped by compare-and-set, so two replicas never spend one token twice. It
    expires once it would be full again, so idle keys cost nothing.

    While the store is unreachable each replica counts on its own (a `MemoryRateLimiter`):
    a limit still holds, per replica, rather than refusing everyone or no one.
    """

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._local = MemoryRateLimiter()
        self._unreachable = False
        self._turns: weakref.WeakValueDictionary[str, anyio.Lock] = weakref.WeakValueDictionary()

    async def acquire(self, key: str, limit: RateLimit) -> float:
        # One request of this process at a time per key: its compare-and-set then only ever
        # races other replicas', never its own, and does not run out of attempts under a burst.
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = anyio.Lock()
        try:
            async with turn:
                wait = await self._acquire(key, limit)
        except StoreUnavailable:
            self._lost()
            return await self._local.acquire(key, limit)
        self._unreachable = False
        return wait

    async def wait(self, key: str, limit: RateLimit) -> float:
        try:
            return await self._wait(key, limit)
        except StoreUnavailable:
            self._lost()
            return await self._local.wait(key, limit)

    def _lost(self) -> None:
        if not self._unreachable:
            self._unreachable = True
            logger.warning("the store is unreachable: each replica counts rate limits until it returns")

    async def _acquire(self, key: str, limit: RateLimit) -> float:
        for _ in range(_SHARED_ATTEMPTS):
            raw = await self._store.get(_SHARED_NAMESPACE, key)
            now = self._clock()
            tokens = self._tokens(raw, limit, now)
            if tokens < 1.0:
                return (1.0 - tokens) / limit.rate
            counted = f"{tokens - 1.0!r},{now!r}".encode()
            ttl = limit.per + timedelta(seconds=1)
            if await self._store.compare_and_set(_SHARED_NAMESPACE, key, raw, counted, ttl=ttl):
                return 0.0
        # Many replicas spending one key at once: the caller waits for the next token.
        return 1.0 / limit.rate

    async def _wait(self, key: str, limit: RateLimit) -> float:
        tokens = self._tokens(await self._store.get(_SHARED_NAMESPACE, key), limit, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / limit.rate

    @staticmethod
    def _tokens(raw: bytes | None, limit: RateLimit, now: float) -> float:
        if raw is None:
            return float(limit.requests)
        try:
            left_text, at_text = raw.decode().split(",", 1)
            left, at = float(left_text), float(at_text)
        except ValueError:
            return float(limit.requests)
        return min(float(limit.requests), left + max(0.0, now - at) * limit.rate)

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

__all__ = [
    "LeasedRateLimiter",
    "MemoryRateLimiter",
    "RateLimit",
    "RateLimiter",
    "StoreRateLimiter",
    "address_key",
    "network_key",
]


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
_REMEMBERED_BUCKETS = 100_000


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
        # key → the bucket this process last wrote or read there, least recently used first
        self._written: OrderedDict[str, bytes] = OrderedDict()

    async def acquire(self, key: str, limit: RateLimit) -> float:
        _, wait = await self.take(key, limit, 1)
        return wait

    async def take(self, key: str, limit: RateLimit, most: int) -> tuple[int, float]:
        """Spend up to `most` requests' worth of `key`'s budget at once: how many were
        spent, and when none could be, the seconds until one could."""
        # One request of this process at a time per key: its compare-and-set then only ever
        # races other replicas', never its own, and does not run out of attempts under a burst.
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = anyio.Lock()
        try:
            async with turn:
                taken = await self._take(key, limit, most)
        except StoreUnavailable:
            self._lost()
            wait = await self._local.acquire(key, limit)
            return (0, wait) if wait > 0 else (1, 0.0)
        self._unreachable = False
        return taken

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

    async def _take(self, key: str, limit: RateLimit, most: int) -> tuple[int, float]:
        # The bucket this process wrote last is tried first, without reading it: while no
        # other replica spent from it meanwhile, one round trip instead of two. Other
        # replicas only ever spend, so it never shows more tokens than the store holds.
        raw = self._written.pop(key, None)
        for _ in range(_SHARED_ATTEMPTS):
            if raw is None:
                raw = await self._store.get(_SHARED_NAMESPACE, key)
            now = self._clock()
            tokens = self._tokens(raw, limit, now)
            if tokens < 1.0:
                if raw is not None:
                    self._remember(key, raw)
                return 0, (1.0 - tokens) / limit.rate
            taken = min(most, int(tokens))
            counted = f"{tokens - taken!r},{now!r}".encode()
            ttl = limit.per + timedelta(seconds=1)
            if await self._store.compare_and_set(_SHARED_NAMESPACE, key, raw, counted, ttl=ttl):
                self._remember(key, counted)
                return taken, 0.0
            raw = None
        # Many replicas spending one key at once: the caller waits for the next token.
        return 0, 1.0 / limit.rate

    def _remember(self, key: str, raw: bytes) -> None:
        self._written[key] = raw
        if len(self._written) > _REMEMBERED_BUCKETS:
            self._written.popitem(last=False)

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


MAX_LEASE_FRACTION = 0.05
"""A lease holds at most this share of a limit, so replicas never hoard much of it."""
LEASE_SECONDS = 1.0
"""How long a lease's tokens may be spent; what is left then is dropped, never returned."""


class LeasedRateLimiter:
    """One limit for every replica on a store, without a store round trip per request.

    A replica takes a lease of tokens from the shared bucket (one compare-and-set) and
    spends it in memory for up to `LEASE_SECONDS`. A caller who spends a whole lease gets
    one twice as large the next time (up to `MAX_LEASE_FRACTION` of the limit); one who
    left tokens unspent gets a single token again. The bucket gives no token twice, so
    the deployment never admits more than the limit; at most it admits a little less,
    the tokens of leases left unspent when they lapse. A caller refused is refused from
    memory until the bucket could have refilled, so a flood past the limit costs the store
    nothing either.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.monotonic,
        shared_clock: Callable[[], float] = time.time,
        max_keys: int = 100_000,
    ) -> None:
        self._shared = StoreRateLimiter(store, clock=shared_clock)
        self._clock = clock
        self._max_keys = max_keys
        # key → (tokens left, lease ends at, lease size, refused until)
        self._leases: OrderedDict[str, tuple[int, float, int, float]] = OrderedDict()

    async def acquire(self, key: str, limit: RateLimit) -> float:
        now = self._clock()
        lease = self._leases.get(key)
        if lease is not None:
            left, ends_at, size, held_until = lease
            if left > 0 and ends_at > now:
                self._leases[key] = (left - 1, ends_at, size, held_until)
                return 0.0
            if held_until > now:
                # Refused a moment ago: the bucket has not refilled yet, no need to ask.
                return held_until - now
        spent_all = lease is not None and lease[0] == 0
        size = lease[2] * 2 if lease is not None and spent_all else 1
        size = max(1, min(size, int(limit.requests * MAX_LEASE_FRACTION)))
        taken, wait = await self._shared.take(key, limit, size)
        now = self._clock()
        # Another request of this process may have taken a lease meanwhile: both are kept.
        lease = self._leases.get(key)
        if lease is not None and lease[0] > 0 and lease[1] > now:
            taken += lease[0]
        if taken == 0:
            self._leases[key] = (0, now, 1, now + wait)
            return wait
        self._leases[key] = (taken - 1, now + LEASE_SECONDS, size, 0.0)
        self._leases.move_to_end(key)
        if len(self._leases) > self._max_keys:
            self._leases.popitem(last=False)
        return 0.0

    async def wait(self, key: str, limit: RateLimit) -> float:
        lease, now = self._leases.get(key), self._clock()
        if lease is not None and lease[0] > 0 and lease[1] > now:
            return 0.0
        if lease is not None and lease[3] > now:
            return lease[3] - now
        return await self._shared.wait(key, limit)

"""`RedisStore`: the `Store` in Redis, shared by every replica of a gateway.

An entry is a Redis hash ``<prefix>e:<namespace>NUL<key>`` holding the value (``v``) and
the time it expires by the store's clock (``e``, empty for never). That time decides
whether the entry is live, in every operation, so a record lives exactly its lifetime;
Redis's own expiry (the lifetime plus a minute) only reclaims the space later. A sorted
set per namespace, ``<prefix>i:<namespace>``, indexes the keys for `scan`: Redis orders
its members by their UTF-8 bytes, which is code-point order.

Every operation that reads and then writes is one Lua script, so it is atomic across all
the replicas: of several concurrent `add`s, `take`s or `compare_and_set`s from one value,
exactly one wins. Needs the `redis` extra (``pip install "mcp-front[redis]"``).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from mcp_front.storage.base import (
    DEFAULT_SCAN_LIMIT,
    Clock,
    StoreUnavailable,
    check_entry,
    check_limit,
    check_name,
    check_value,
    expiry,
    unavailable_on,
)
from mcp_front.storage.notifications import Listener, check_topic, listen_resuming

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX = "mcp-front:"
_RECLAIM_SLACK_MS = 60_000
"""Redis keeps an entry this long past its lifetime, so clocks a little apart never see it
vanish early; it is invisible from its expiry on anyway."""

# KEYS: entry, index. ARGV: now, key, value, expires_at ('' = never), redis ttl ms ('' = none).
_LIVE = """
local function live(entry, now)
  local e = redis.call('HGET', entry, 'e')
  if e == false then return false end
  if e ~= '' and tonumber(e) <= tonumber(now) then return false end
  return true
end
"""
_SET = """
local function set(entry, index, key, value, expires_at, ttl_ms)
  redis.call('DEL', entry)
  redis.call('HSET', entry, 'v', value, 'e', expires_at)
  if ttl_ms ~= '' then redis.call('PEXPIRE', entry, ttl_ms) end
  redis.call('ZADD', index, 0, key)
end
"""
_PUT = _SET + "set(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4], ARGV[5]) return 1"
_ADD = (
    _LIVE
    + _SET
    + """
if live(KEYS[1], ARGV[1]) then return 0 end
set(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1
"""
)
_TAKE = (
    _LIVE
    + """
if not live(KEYS[1], ARGV[1]) then return false end
local value = redis.call('HGET', KEYS[1], 'v')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return value
"""
)
_DELETE = (
    _LIVE
    + """
local was = live(KEYS[1], ARGV[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if was then return 1 end
return 0
"""
)
_PURGE = (
    _LIVE
    + """
if live(KEYS[1], ARGV[1]) then return 0 end
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return existed
"""
)
# ARGV: now, key, expected flag ('0' absent, '1' present), expected, new flag, new, expires_at, ttl ms
_CAS = (
    _LIVE
    + _SET
    + """
local current = false
if live(KEYS[1], ARGV[1]) then current = redis.call('HGET', KEYS[1], 'v') end
if ARGV[3] == '0' then
  if current ~= false then return 0 end
else
  if current == false or current ~= ARGV[4] then return 0 end
end
if ARGV[5] == '0' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
else
  set(KEYS[1], KEYS[2], ARGV[2], ARGV[6], ARGV[7], ARGV[8])
end
return 1
"""
)


_unavailable = unavailable_on(RedisConnectionError, RedisTimeoutError, OSError, what="Redis")

SOCKET_TIMEOUT = 5.0
"""Seconds a connection or an answer may take before the store is called unavailable."""


class RedisStore:
    """A `Store` in Redis; `prefix` keeps several gateways (or tests) apart in one database."""

    def __init__(self, client: Redis, *, prefix: str = DEFAULT_PREFIX, clock: Clock = time.time) -> None:
        self._redis = client
        self._prefix = prefix
        self._clock = clock
        self._closed = False
        self._put = client.register_script(_PUT)
        self._add = client.register_script(_ADD)
        self._take = client.register_script(_TAKE)
        self._delete = client.register_script(_DELETE)
        self._cas = client.register_script(_CAS)
        self._purge = client.register_script(_PURGE)
        self._notifications = RedisNotifications(client, prefix)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX, clock: Clock = time.time) -> RedisStore:
        """A store on the Redis at `url` (``redis://``, ``rediss://`` or ``unix://``)."""
        client = Redis.from_url(
            url,
            decode_responses=False,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            health_check_interval=30,
        )
        return cls(client, prefix=prefix, clock=clock)

    @property
    def notifications(self) -> RedisNotifications:
        """Messages between the processes sharing this Redis, on its pub/sub."""
        return self._notifications

    # -- addresses ---------------------------------------------------------------------------

    def _entry(self, namespace: str, key: str) -> bytes:
        return f"{self._prefix}e:{namespace}\x00{key}".encode()

    def _index(self, namespace: str) -> bytes:
        return f"{self._prefix}i:{namespace}".encode()

    def _check(self, namespace: str, key: str) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        check_entry(namespace, key)

    def _lifetime(self, ttl: timedelta | None) -> tuple[str, str]:
        expires_at = expiry(self._clock(), ttl)
        if expires_at is None or ttl is None:
            return "", ""
        return repr(expires_at), str(int(ttl.total_seconds() * 1000) + _RECLAIM_SLACK_MS)

    # -- the protocol ------------------------------------------------------------------------

    @_unavailable
    async def get(self, namespace: str, key: str) -> bytes | None:
        self._check(namespace, key)
        found: list[Any] = await self._redis.hmget(self._entry(namespace, key), ["v", "e"])
        return _live_value(found, self._clock())

    @_unavailable
    async def put(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> None:
        self._check(namespace, key)
        check_value("value", value)
        expires_at, ttl_ms = self._lifetime(ttl)
        keys = [self._entry(namespace, key), self._index(namespace)]
        await self._put(keys=keys, args=[repr(self._clock()), key, value, expires_at, ttl_ms])

    @_unavailable
    async def add(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> bool:
        self._check(namespace, key)
        check_value("value", value)
        expires_at, ttl_ms = self._lifetime(ttl)
        keys = [self._entry(namespace, key), self._index(namespace)]
        return bool(await self._add(keys=keys, args=[repr(self._clock()), key, value, expires_at, ttl_ms]))

    @_unavailable
    async def take(self, namespace: str, key: str) -> bytes | None:
        self._check(namespace, key)
        keys = [self._entry(namespace, key), self._index(namespace)]
        value = await self._take(keys=keys, args=[repr(self._clock()), key])
        return None if value is None else bytes(value)

    @_unavailable
    async def compare_and_set(
        self,
        namespace: str,
        key: str,
        expected: bytes | None,
        new: bytes | None,
        *,
        ttl: timedelta | None = None,
    ) -> bool:
        self._check(namespace, key)
        check_value("expected", expected, optional=True)
        check_value("new", new, optional=True)
        expires_at, ttl_ms = self._lifetime(ttl)
        args = [
            repr(self._clock()),
            key,
            "0" if expected is None else "1",
            expected or b"",
            "0" if new is None else "1",
            new or b"",
            expires_at,
            ttl_ms,
        ]
        keys = [self._entry(namespace, key), self._index(namespace)]
        return bool(await self._cas(keys=keys, args=args))

    @_unavailable
    async def delete(self, namespace: str, key: str) -> bool:
        self._check(namespace, key)
        keys = [self._entry(namespace, key), self._index(namespace)]
        return bool(await self._delete(keys=keys, args=[repr(self._clock()), key]))

    @_unavailable
    async def scan(
        self, namespace: str, prefix: str = "", *, limit: int = DEFAULT_SCAN_LIMIT
    ) -> list[tuple[str, bytes]]:
        self._check(namespace, "-")
        check_name("prefix", prefix)
        check_limit(limit)
        low = b"[" + prefix.encode()
        high = b"[" + prefix.encode() + b"\xff"  # no UTF-8 string holds 0xFF
        found: list[tuple[str, bytes]] = []
        start = 0
        batch = max(limit, 100)
        while len(found) < limit:
            keys = await self._redis.zrangebylex(self._index(namespace), low, high, start, batch)
            if not keys:
                break
            start += len(keys)
            # One round trip for the whole batch, not one per key.
            pipeline = self._redis.pipeline(transaction=False)
            names = [_text(raw_key) for raw_key in keys]
            for key in names:
                pipeline.hmget(self._entry(namespace, key), ["v", "e"])
            now = self._clock()
            for key, entry in zip(names, await pipeline.execute(), strict=True):
                value = _live_value(entry, now)
                if value is not None:
                    found.append((key, value))
                    if len(found) == limit:
                        break
        return found

    @_unavailable
    async def purge_expired(self) -> int:
        """Drop index entries (and entries) whose entry has expired or is gone."""
        if self._closed:
            raise RuntimeError("the store is closed")
        removed = 0
        async for index in self._redis.scan_iter(match=f"{self._prefix}i:*".encode(), count=500):
            namespace = index[len(self._prefix) + 2 :].decode()
            for raw_key in await self._redis.zrange(index, 0, -1):
                key = _text(raw_key)
                keys = [self._entry(namespace, key), index]
                removed += int(await self._purge(keys=keys, args=[repr(self._clock()), key]))
        return removed

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._redis.aclose()


class RedisNotifications:
    """`Notifications` on Redis pub/sub, on channels named by the store's prefix."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def _channel(self, topic: str) -> bytes:
        return f"{self._prefix}n:{topic}".encode()

    @_unavailable
    async def publish(self, topic: str, message: str) -> None:
        check_topic(topic, message)
        await self._redis.publish(self._channel(topic), message.encode())

    async def listen(self, topic: str, listener: Listener) -> None:
        check_topic(topic, "")
        channel = self._channel(topic)
        errors = (RedisConnectionError, RedisTimeoutError, OSError, StoreUnavailable)
        await listen_resuming(topic, listener, lambda heard: self._listen_once(channel, heard), errors)

    async def _listen_once(self, channel: bytes, listener: Listener) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(channel)
            # Only once Redis confirmed the subscription can nothing published be missed.
            while (confirmed := await pubsub.get_message(timeout=SOCKET_TIMEOUT)) is None:
                pass
            if confirmed.get("type") != "subscribe":
                raise StoreUnavailable("Redis did not confirm the subscription")
            await listener.connected()
            while True:
                item = await pubsub.get_message(timeout=1.0)
                if item is None:
                    continue
                if item.get("type") == "message":
                    listener.message(_text(item["data"]))
                elif item.get("type") == "subscribe":
                    # redis-py reconnected and subscribed again by itself: whatever was
                    # published in between was missed.
                    listener.disconnected()
                    await listener.connected()
        finally:
            with anyio.CancelScope(shield=True):
                await pubsub.aclose()


def _live_value(entry: list[Any], now: float) -> bytes | None:
    """The value of a hash read as `[v, e]`, if the entry is live at `now`."""
    value, expires_at = entry
    if value is None or (expires_at and float(expires_at) <= now):
        return None
    return bytes(value)


def _text(raw: object) -> str:
    """A key as Redis hands it back (bytes, since responses are not decoded)."""
    if isinstance(raw, bytes):
        return raw.decode()
    if isinstance(raw, str):
        return raw
    raise TypeError(f"unexpected Redis reply {type(raw).__name__}")

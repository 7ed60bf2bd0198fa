"""`PostgresStore`: the `Store` in PostgreSQL, shared by every replica of a gateway.

One table, ``mcp_front_entries (namespace, key, value, expires_at)``, its key columns in
the "C" collation so keys sort by code point as in every store. The time an entry
expires (by the store's clock) decides in every statement whether it is live, so a record
lives exactly its lifetime; `purge_expired` deletes the dead ones. Every read-then-write is
one statement (`INSERT … ON CONFLICT … WHERE`, `UPDATE … WHERE value = …`, `DELETE …
RETURNING`), atomic under PostgreSQL's row locks, so across replicas a code is redeemed
once and a refresh token rotates once.

The gateway creates and migrates its schema itself, recording the version in
``mcp_front_schema``; a database newer than this code is refused rather than guessed at.
Needs the `postgres` extra (``pip install "mcp-front[postgres]"``): asyncpg.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import anyio
import asyncpg

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

__all__ = ["SCHEMA_VERSION", "PostgresStore"]


SCHEMA_VERSION = 1
_MIGRATIONS = {
    1: """
        CREATE TABLE mcp_front_entries (
            namespace text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            value bytea NOT NULL,
            expires_at double precision,
            PRIMARY KEY (namespace, key)
        );
        CREATE INDEX mcp_front_entries_expiry ON mcp_front_entries (expires_at)
            WHERE expires_at IS NOT NULL;
    """,
}
# $3 is the store's clock in every statement that asks whether an entry is live.
_GET = (
    "SELECT value FROM mcp_front_entries WHERE namespace = $1 AND key = $2"
    " AND (expires_at IS NULL OR expires_at > $3)"
)
_IS_LIVE = (
    "SELECT 1 FROM mcp_front_entries WHERE namespace = $1 AND key = $2"
    " AND (expires_at IS NULL OR expires_at > $3)"
)
_TAKE = (
    "DELETE FROM mcp_front_entries WHERE namespace = $1 AND key = $2"
    " AND (expires_at IS NULL OR expires_at > $3) RETURNING value"
)
_DELETE = (
    "DELETE FROM mcp_front_entries WHERE namespace = $1 AND key = $2"
    " RETURNING (expires_at IS NULL OR expires_at > $3)"
)
_DELETE_IF = (
    "DELETE FROM mcp_front_entries WHERE namespace = $1 AND key = $2"
    " AND (expires_at IS NULL OR expires_at > $3) AND value = $4 RETURNING 1"
)
_SWAP = (
    "UPDATE mcp_front_entries SET value = $5, expires_at = $6 WHERE namespace = $1 AND key = $2"
    " AND (expires_at IS NULL OR expires_at > $3) AND value = $4 RETURNING 1"
)
_SCAN = (
    "SELECT key, value FROM mcp_front_entries WHERE namespace = $1 AND starts_with(key, $2)"
    " AND (expires_at IS NULL OR expires_at > $3) ORDER BY key LIMIT $4"
)
_PUT = (
    "INSERT INTO mcp_front_entries (namespace, key, value, expires_at) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (namespace, key) DO UPDATE"
    " SET value = excluded.value, expires_at = excluded.expires_at"
)
_ADD = (
    "INSERT INTO mcp_front_entries AS e (namespace, key, value, expires_at) VALUES ($1, $2, $4, $5)"
    " ON CONFLICT (namespace, key) DO UPDATE"
    " SET value = excluded.value, expires_at = excluded.expires_at"
    " WHERE e.expires_at IS NOT NULL AND e.expires_at <= $3 RETURNING 1"
)
_PURGE = "DELETE FROM mcp_front_entries WHERE expires_at IS NOT NULL AND expires_at <= $1"


_CONNECTION_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError, TimeoutError)
_unavailable = unavailable_on(*_CONNECTION_ERRORS, what="PostgreSQL")

CONNECT_TIMEOUT = 5.0
"""Seconds a new connection may take before the store is called unavailable."""
COMMAND_TIMEOUT = 10.0
"""Seconds a statement may take; every statement of the store is a single-row one."""


class PostgresStore:
    """A `Store` in PostgreSQL. Built on a URL, it connects, and creates or migrates its
    schema, at its first operation; `PostgresStore.open(url)` does so at once."""

    def __init__(self, url: str, *, clock: Clock = time.time, max_size: int = 10) -> None:
        self._url = url
        self._max_size = max_size
        self._clock = clock
        self._closed = False
        self._connected: asyncpg.Pool | None = None
        self._connecting = anyio.Lock()
        self._notifications = PostgresNotifications(self)

    @classmethod
    async def open(cls, url: str, *, clock: Clock = time.time, max_size: int = 10) -> PostgresStore:
        """A store on the database at `url`, connected, its schema created or migrated."""
        store = cls(url, clock=clock, max_size=max_size)
        await store.pool()
        return store

    async def pool(self) -> asyncpg.Pool:
        """The connection pool, made (and the schema brought up to date) on first use."""
        if self._closed:
            raise RuntimeError("the store is closed")
        if self._connected is not None:
            return self._connected
        async with self._connecting:
            if self._connected is None:
                pool = await asyncpg.create_pool(
                    self._url,
                    min_size=0,
                    max_size=self._max_size,
                    timeout=CONNECT_TIMEOUT,
                    command_timeout=COMMAND_TIMEOUT,
                )
                try:
                    await _migrate(pool)
                except BaseException:
                    await pool.close()
                    raise
                self._connected = pool
            return self._connected

    def __repr__(self) -> str:
        return "PostgresStore(...)"

    @property
    def notifications(self) -> PostgresNotifications:
        """Messages between the processes sharing this database, on LISTEN/NOTIFY."""
        return self._notifications

    async def listening_connection(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool, for LISTEN (a pooled one is shared)."""
        if self._closed:
            raise RuntimeError("the store is closed")
        return await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT)

    async def migrate(self) -> int:
        """Bring the schema to `SCHEMA_VERSION`; the version."""
        return await _migrate(await self.pool())

    def _check(self, namespace: str, key: str) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        check_entry(namespace, key)

    async def _value(self, query: str, *args: Any) -> Any:
        async with (await self.pool()).acquire() as connection:
            return await connection.fetchval(query, *args)

    @_unavailable
    async def get(self, namespace: str, key: str) -> bytes | None:
        self._check(namespace, key)
        value = await self._value(
            _GET,
            namespace,
            key,
            self._clock(),
        )
        return None if value is None else bytes(value)

    @_unavailable
    async def put(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> None:
        self._check(namespace, key)
        check_value("value", value)
        expires_at = expiry(self._clock(), ttl)
        await self._value(
            _PUT,
            namespace,
            key,
            value,
            expires_at,
        )

    @_unavailable
    async def add(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> bool:
        self._check(namespace, key)
        check_value("value", value)
        now = self._clock()
        return await self._insert_if_absent(namespace, key, value, now, expiry(now, ttl))

    async def _insert_if_absent(
        self, namespace: str, key: str, value: bytes, now: float, expires_at: float | None
    ) -> bool:
        inserted = await self._value(
            _ADD,
            namespace,
            key,
            now,
            value,
            expires_at,
        )
        return inserted is not None

    @_unavailable
    async def take(self, namespace: str, key: str) -> bytes | None:
        self._check(namespace, key)
        value = await self._value(
            _TAKE,
            namespace,
            key,
            self._clock(),
        )
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
        now = self._clock()
        expires_at = expiry(now, ttl)
        if expected is None and new is not None:
            return await self._insert_if_absent(namespace, key, new, now, expires_at)
        if expected is None:
            live = await self._value(
                _IS_LIVE,
                namespace,
                key,
                now,
            )
            return live is None
        if new is None:
            removed = await self._value(
                _DELETE_IF,
                namespace,
                key,
                now,
                expected,
            )
            return removed is not None
        swapped = await self._value(
            _SWAP,
            namespace,
            key,
            now,
            expected,
            new,
            expires_at,
        )
        return swapped is not None

    @_unavailable
    async def delete(self, namespace: str, key: str) -> bool:
        self._check(namespace, key)
        was_live = await self._value(
            _DELETE,
            namespace,
            key,
            self._clock(),
        )
        return bool(was_live)

    @_unavailable
    async def scan(
        self, namespace: str, prefix: str = "", *, limit: int = DEFAULT_SCAN_LIMIT
    ) -> list[tuple[str, bytes]]:
        self._check(namespace, "-")
        check_name("prefix", prefix)
        check_limit(limit)
        async with (await self.pool()).acquire() as connection:
            rows = await connection.fetch(
                _SCAN,
                namespace,
                prefix,
                self._clock(),
                limit,
            )
        return [(row["key"], bytes(row["value"])) for row in rows]

    @_unavailable
    async def purge_expired(self) -> int:
        if self._closed:
            raise RuntimeError("the store is closed")
        async with (await self.pool()).acquire() as connection:
            status = await connection.execute(
                _PURGE,
                self._clock(),
            )
        return int(status.rsplit(" ", 1)[-1])

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if self._connected is not None:
                await self._connected.close()


class PostgresNotifications:
    """`Notifications` on PostgreSQL LISTEN/NOTIFY, on channels ``mcp_front_<topic>``."""

    HEALTH_CHECK_SECONDS = 10.0
    """How often an idle listening connection is checked: a silent peer is noticed in time."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    @_unavailable
    async def publish(self, topic: str, message: str) -> None:
        check_topic(topic, message)
        async with (await self._store.pool()).acquire() as connection:
            await connection.execute("SELECT pg_notify($1, $2)", f"mcp_front_{topic}", message)

    async def listen(self, topic: str, listener: Listener) -> None:
        check_topic(topic, "")
        channel = f"mcp_front_{topic}"
        errors = (*_CONNECTION_ERRORS, StoreUnavailable)
        await listen_resuming(topic, listener, lambda heard: self._listen_once(channel, heard), errors)

    async def _listen_once(self, channel: str, listener: Listener) -> None:
        connection = await self._store.listening_connection()
        lost = anyio.Event()
        try:
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(
                channel, lambda _connection, _pid, _channel, payload: listener.message(payload)
            )
            # LISTEN has taken effect once it returned: nothing notified later is missed.
            await listener.connected()
            while not lost.is_set():
                with anyio.move_on_after(self.HEALTH_CHECK_SECONDS):
                    await lost.wait()
                if not lost.is_set():
                    await connection.execute("SELECT 1")
            raise StoreUnavailable("the listening connection to PostgreSQL was lost")
        finally:
            connection.terminate()


async def _migrate(pool: asyncpg.Pool) -> int:
    """Bring the schema to `SCHEMA_VERSION`, in one transaction, one gateway at a time."""
    async with pool.acquire() as connection:
        await connection.execute("CREATE TABLE IF NOT EXISTS mcp_front_schema (version integer NOT NULL)")
        async with connection.transaction():
            await connection.execute("LOCK TABLE mcp_front_schema IN EXCLUSIVE MODE")
            version = await connection.fetchval("SELECT max(version) FROM mcp_front_schema") or 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the database's schema is version {version}, newer than this mcp-front "
                    f"(version {SCHEMA_VERSION}): upgrade mcp-front"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                await connection.execute(_MIGRATIONS[step])
                await connection.execute("INSERT INTO mcp_front_schema (version) VALUES ($1)", step)
    return SCHEMA_VERSION

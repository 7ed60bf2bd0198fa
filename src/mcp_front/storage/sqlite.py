"""`SQLiteStore`: the `Store` in an embedded SQLite file, the gateway's default.

It uses the standard library's sqlite3 with one connection per store. The blocking calls
run in a worker thread, one at a time (an anyio lock serialises them), and every
read-modify-write runs in one `BEGIN IMMEDIATE` transaction, so the atomic operations stay
atomic against other stores and processes on the same file. WAL mode lets readers proceed
while a writer commits; the busy timeout makes a second writer wait instead of failing.
The file is created readable by its owner only: it holds hashed and encrypted secrets.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from mcp_front.storage.base import (
    DEFAULT_SCAN_LIMIT,
    Clock,
    check_entry,
    check_limit,
    check_name,
    check_value,
    expiry,
)

T = TypeVar("T")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at REAL NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX IF NOT EXISTS entries_expires_at ON entries (expires_at) WHERE expires_at IS NOT NULL;
"""

# Every query spells out the liveness condition `(expires_at IS NULL OR expires_at > :now)`.
_SELECT_LIVE = """
SELECT value FROM entries
WHERE namespace = :ns AND key = :key AND (expires_at IS NULL OR expires_at > :now)
"""
_UPSERT = """
INSERT INTO entries (namespace, key, value, expires_at) VALUES (:ns, :key, :value, :expires_at)
ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
"""
_DELETE = "DELETE FROM entries WHERE namespace = :ns AND key = :key"
_DELETE_LIVE = """
DELETE FROM entries
WHERE namespace = :ns AND key = :key AND (expires_at IS NULL OR expires_at > :now)
"""
_SCAN = """
SELECT key, value FROM entries
WHERE namespace = :ns AND key >= :prefix AND (expires_at IS NULL OR expires_at > :now)
ORDER BY key LIMIT :limit
"""
_SCAN_BOUNDED = """
SELECT key, value FROM entries
WHERE namespace = :ns AND key >= :prefix AND key < :end AND (expires_at IS NULL OR expires_at > :now)
ORDER BY key LIMIT :limit
"""
_PURGE = "DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= :now"


def _prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix`, if any.

    Together with `key >= prefix` it bounds a prefix scan to an index range. Surrogates
    are skipped because valid keys never contain them.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


def _create_private_file(path: Path) -> None:
    """Create the database file with mode 0600 before SQLite opens it, if it is new."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SQLiteStore:
    """A `Store` in a SQLite database file.

    `purge_expired` is the owner's job: the store runs no background task. Close it with
    `aclose`, or use `async with SQLiteStore.open(path) as store`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        busy_timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        # The clock is wall time by default: expiry times outlive the process in the file.
        self.path = Path(path)
        self._clock = clock
        self._lock = anyio.Lock()
        _create_private_file(self.path)
        self._connection: sqlite3.Connection | None = sqlite3.connect(
            self.path,
            timeout=busy_timeout.total_seconds(),
            isolation_level=None,  # transactions are explicit
            check_same_thread=False,  # used from worker threads, one at a time
        )
        try:
            self._initialise(self._connection)
        except BaseException:
            self._connection.close()
            raise

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        busy_timeout: timedelta = timedelta(seconds=5),
    ) -> AsyncIterator[SQLiteStore]:
        """Open the store in a worker thread, and close it on leaving the block."""
        store = await anyio.to_thread.run_sync(lambda: cls(path, clock=clock, busy_timeout=busy_timeout))
        try:
            yield store
        finally:
            await store.aclose()

    @staticmethod
    def _initialise(connection: sqlite3.Connection) -> None:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database was written by a newer mcp-front (schema {version}, this one knows "
                f"{SCHEMA_VERSION}): upgrade mcp-front or use another file"
            )
        with _transaction(connection):
            for statement in filter(str.strip, _SCHEMA.split(";")):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    async def _run(self, operation: Callable[[sqlite3.Connection, float], T]) -> T:
        """Run `operation(connection, now)` in a worker thread, one operation at a time."""
        async with self._lock:
            connection = self._connection
            if connection is None:
                raise RuntimeError("the store is closed")
            now = self._clock()
            return await anyio.to_thread.run_sync(operation, connection, now)

    async def get(self, namespace: str, key: str) -> bytes | None:
        check_entry(namespace, key)

        def get(db: sqlite3.Connection, now: float) -> bytes | None:
            row = db.execute(_SELECT_LIVE, {"ns": namespace, "key": key, "now": now}).fetchone()
            return None if row is None else bytes(row[0])

        return await self._run(get)

    async def put(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> None:
        check_entry(namespace, key)
        check_value("value", value)
        expiry(0.0, ttl)

        def put(db: sqlite3.Connection, now: float) -> None:
            params = {"ns": namespace, "key": key, "value": value, "expires_at": expiry(now, ttl)}
            db.execute(_UPSERT, params)

        await self._run(put)

    async def add(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> bool:
        check_entry(namespace, key)
        check_value("value", value)
        expiry(0.0, ttl)

        def add(db: sqlite3.Connection, now: float) -> bool:
            params = {"ns": namespace, "key": key, "now": now}
            with _transaction(db):
                if db.execute(_SELECT_LIVE, params).fetchone() is not None:
                    return False
                db.execute(_UPSERT, params | {"value": value, "expires_at": expiry(now, ttl)})
                return True

        return await self._run(add)

    async def take(self, namespace: str, key: str) -> bytes | None:
        check_entry(namespace, key)

        def take(db: sqlite3.Connection, now: float) -> bytes | None:
            params = {"ns": namespace, "key": key, "now": now}
            with _transaction(db):
                row = db.execute(_SELECT_LIVE, params).fetchone()
                if row is None:
                    return None
                db.execute(_DELETE, params)
                return bytes(row[0])

        return await self._run(take)

    async def compare_and_set(
        self,
        namespace: str,
        key: str,
        expected: bytes | None,
        new: bytes | None,
        *,
        ttl: timedelta | None = None,
    ) -> bool:
        check_entry(namespace, key)
        check_value("expected", expected, optional=True)
        check_value("new", new, optional=True)
        expiry(0.0, ttl)

        def compare_and_set(db: sqlite3.Connection, now: float) -> bool:
            params = {"ns": namespace, "key": key, "now": now}
            with _transaction(db):
                row = db.execute(_SELECT_LIVE, params).fetchone()
                if (None if row is None else bytes(row[0])) != expected:
                    return False
                if new is None:
                    db.execute(_DELETE, params)
                else:
                    db.execute(_UPSERT, params | {"value": new, "expires_at": expiry(now, ttl)})
                return True

        return await self._run(compare_and_set)

    async def delete(self, namespace: str, key: str) -> bool:
        check_entry(namespace, key)

        def delete(db: sqlite3.Connection, now: float) -> bool:
            params = {"ns": namespace, "key": key, "now": now}
            return db.execute(_DELETE_LIVE, params).rowcount > 0

        return await self._run(delete)

    async def scan(
        self, namespace: str, prefix: str = "", *, limit: int = DEFAULT_SCAN_LIMIT
    ) -> list[tuple[str, bytes]]:
        check_entry(namespace, "-")
        check_name("prefix", prefix)
        check_limit(limit)
        end = _prefix_end(prefix)
        query = _SCAN if end is None else _SCAN_BOUNDED

        def scan(db: sqlite3.Connection, now: float) -> list[tuple[str, bytes]]:
            params = {"ns": namespace, "prefix": prefix, "end": end, "now": now, "limit": limit}
            return [(str(key), bytes(value)) for key, value in db.execute(query, params)]

        return await self._run(scan)

    async def purge_expired(self) -> int:
        def purge(db: sqlite3.Connection, now: float) -> int:
            return db.execute(_PURGE, {"now": now}).rowcount

        return await self._run(purge)

    async def aclose(self) -> None:
        async with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                await anyio.to_thread.run_sync(connection.close)


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, taken at its start so two writers never deadlock mid-way."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")

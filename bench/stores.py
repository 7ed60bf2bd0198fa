"""Empty stores for a benchmark's gateways: a SQLite file, a Redis database, a PostgreSQL
database of the run's own (dropped when the run ends)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from bench.processes import BenchError

REDIS = os.environ.get("MCP_FRONT_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
POSTGRES = os.environ.get("MCP_FRONT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
KINDS = ("memory", "sqlite", "redis", "postgres")


class BenchStores:
    """Hands out empty stores and removes the PostgreSQL databases it made."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._databases: list[str] = []
        self._made = 0

    async def empty(self, kind: str) -> dict[str, str]:
        """The `proxy.auth.storage` of a new, empty store of `kind`."""
        self._made += 1
        if kind == "memory":
            return {"kind": "memory"}
        if kind == "sqlite":
            return {"kind": "sqlite", "path": str(self.directory / f"store-{self._made}.sqlite3")}
        if kind == "redis":
            from redis.asyncio import Redis

            url = f"{REDIS}/{10 + self._made % 6}"
            client = Redis.from_url(url)
            try:
                await client.flushdb()
            except OSError as error:
                raise BenchError(f"Redis is not reachable at {REDIS}: {error}") from None
            finally:
                await client.aclose()
            return {"kind": "redis", "url": url}
        if kind == "postgres":
            import asyncpg

            name = f"mcp_front_bench_{secrets.token_hex(4)}"
            try:
                admin = await asyncpg.connect(f"{POSTGRES}/postgres")
            except OSError as error:
                raise BenchError(f"PostgreSQL is not reachable at {POSTGRES}: {error}") from None
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            self._databases.append(name)
            return {"kind": "postgres", "url": f"{POSTGRES}/{name}"}
        raise BenchError(f"unknown storage kind {kind!r}: one of {', '.join(KINDS)}")

    async def drop(self) -> None:
        """Drop the PostgreSQL databases made (their gateways must have stopped)."""
        if not self._databases:
            return
        import asyncpg

        admin = await asyncpg.connect(f"{POSTGRES}/postgres")
        try:
            for name in self._databases:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        self._databases.clear()

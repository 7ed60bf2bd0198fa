"""`PostgresStore` against the machine's PostgreSQL (127.0.0.1:5432), in a database of its own."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from mcp_front.storage import Store
from mcp_front.storage.base import StoreUnavailable
from mcp_front.storage.postgres import SCHEMA_VERSION, PostgresStore
from tests.support.relay import outage_and_recovery, relay_to
from tests.unit.storage.conformance import FakeClock, StoreConformance

SERVER = os.environ.get("MCP_FRONT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")


async def admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(f"{SERVER}/postgres")
    except (OSError, asyncpg.PostgresError) as error:
        message = f"PostgreSQL is not reachable at {SERVER} ({error}); start it (see the env skill)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A database of the module's own, dropped after it (set up on a loop of its own: the
    tests' loops live one test each)."""
    name = f"mcp_front_test_{secrets.token_hex(4)}"

    async def run(statement: str) -> None:
        connection = await admin()
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{SERVER}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE "{name}" WITH (FORCE)'))


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    async def store(self, clock: FakeClock, database: str) -> AsyncIterator[Store]:
        found = await PostgresStore.open(database, clock=clock)
        async with (await found.pool()).acquire() as connection:
            await connection.execute("TRUNCATE mcp_front_entries")
        yield found
        await found.aclose()


async def test_the_schema_is_created_once_and_recorded(database: str) -> None:
    first = await PostgresStore.open(database)
    second = await PostgresStore.open(database)
    try:
        assert await second.migrate() == SCHEMA_VERSION
        connection = await asyncpg.connect(database)
        try:
            versions = [
                row["version"] for row in await connection.fetch("SELECT version FROM mcp_front_schema")
            ]
        finally:
            await connection.close()
        assert versions == [SCHEMA_VERSION]
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_newer_schema_is_refused(database: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("CREATE TABLE IF NOT EXISTS mcp_front_schema (version integer NOT NULL)")
        await connection.execute("INSERT INTO mcp_front_schema (version) VALUES (99)")
        with pytest.raises(RuntimeError, match="newer than this mcp-front"):
            await PostgresStore.open(database)
    finally:
        await connection.execute("DELETE FROM mcp_front_schema WHERE version = 99")
        await connection.close()


async def test_an_unreachable_postgres_is_reported_and_the_store_recovers(database: str) -> None:
    address, name = database.rsplit("/", 1)
    host, port = address.rsplit("@", 1)[1].rsplit(":", 1)
    with relay_to(host, int(port)) as relay:
        store = PostgresStore(f"postgresql://postgres@127.0.0.1:{relay.port}/{name}")
        await outage_and_recovery(store, relay, "PostgreSQL")


async def test_a_postgres_down_at_start_is_reported_and_joined_once_up(database: str) -> None:
    address, name = database.rsplit("/", 1)
    host, port = address.rsplit("@", 1)[1].rsplit(":", 1)
    with relay_to(host, int(port)) as relay:
        relay.cut()
        store = PostgresStore(f"postgresql://postgres@127.0.0.1:{relay.port}/{name}")
        try:
            with pytest.raises(StoreUnavailable):
                await store.get("clients", "k")
            relay.restore()
            assert await store.get("clients", "k") is None
        finally:
            await store.aclose()

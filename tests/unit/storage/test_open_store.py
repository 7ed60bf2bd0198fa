from pathlib import Path

import pytest
from pydantic import SecretStr

from mcp_front.config import MemoryStorage, PostgresStorage, RedisStorage, SQLiteStorage
from mcp_front.storage import MemoryStore, SQLiteStore, open_store, sqlite_path
from mcp_front.storage.postgres import PostgresStore
from mcp_front.storage.redis import RedisStore


async def test_memory() -> None:
    store = open_store(MemoryStorage())
    assert isinstance(store, MemoryStore)
    await store.aclose()


async def test_sqlite_relative_path_is_taken_from_base_dir(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    store = open_store(SQLiteStorage(path="state/db.sqlite3"), base_dir=tmp_path)
    assert isinstance(store, SQLiteStore)
    await store.aclose()
    assert store.path == tmp_path / "state" / "db.sqlite3"
    assert store.path.exists()


async def test_sqlite_absolute_path_ignores_base_dir(tmp_path: Path) -> None:
    store = open_store(SQLiteStorage(path=str(tmp_path / "abs.sqlite3")), base_dir="/elsewhere")
    assert isinstance(store, SQLiteStore)
    await store.aclose()
    assert store.path == tmp_path / "abs.sqlite3"


def test_sqlite_path_defaults_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path(SQLiteStorage()) == tmp_path / "mcp-front.sqlite3"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sqlite_path(SQLiteStorage(path="~/db.sqlite3"), "/x") == tmp_path / "home" / "db.sqlite3"


async def test_redis_opens_a_redis_store_on_its_url() -> None:
    config = RedisStorage(url=SecretStr("redis://user:hunter2@localhost:6379/3"))
    store = open_store(config)
    try:
        assert isinstance(store, RedisStore)
        assert "hunter2" not in repr(store)
    finally:
        await store.aclose()


async def test_postgres_opens_a_postgres_store_on_its_url() -> None:
    config = PostgresStorage(url=SecretStr("postgresql://user:hunter2@localhost:5432/gw"))
    store = open_store(config)
    try:
        assert isinstance(store, PostgresStore)
        assert "hunter2" not in repr(store)
    finally:
        await store.aclose()

import sqlite3
import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from mcp_front.storage import SQLiteStore, Store
from mcp_front.storage.sqlite import SCHEMA_VERSION, _prefix_end
from tests.unit.storage.conformance import FakeClock, StoreConformance


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    async def store(self, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Store]:
        async with SQLiteStore.open(tmp_path / "state.sqlite3", clock=clock) as store:
            yield store


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    clock = FakeClock()
    async with SQLiteStore.open(path, clock=clock) as store:
        await store.put("clients", "c1", b"\x00client")
        await store.put("codes", "short", b"code", ttl=timedelta(seconds=10))
        await store.put("codes", "long", b"code", ttl=timedelta(hours=1))
    async with SQLiteStore.open(path, clock=clock) as store:
        assert await store.get("clients", "c1") == b"\x00client"
        clock.advance(60)
        assert await store.scan("codes") == [("long", b"code")]
        assert await store.purge_expired() == 1


async def test_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    async with SQLiteStore.open(path) as store:
        await store.put("ns", "k", b"v")
        for file in tmp_path.iterdir():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name


async def test_an_existing_file_keeps_its_data_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    async with SQLiteStore.open(path) as store:
        await store.put("ns", "k", b"v")
    path.chmod(0o640)
    async with SQLiteStore.open(path) as store:
        assert await store.get("ns", "k") == b"v"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


async def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    async with SQLiteStore.open(path) as first, SQLiteStore.open(path) as second:
        await first.put("ns", "k", b"from first")
        assert await second.get("ns", "k") == b"from first"
        assert await second.compare_and_set("ns", "k", b"from first", b"from second")
        assert await first.get("ns", "k") == b"from second"
        assert not await first.add("ns", "k", b"again")
        assert await first.take("ns", "k") == b"from second"
        assert await second.get("ns", "k") is None


async def test_takes_from_two_stores_on_one_file_have_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    async with SQLiteStore.open(path) as first, SQLiteStore.open(path) as second:

        async def take(store: SQLiteStore, results: list[bytes | None]) -> None:
            results.append(await store.take("codes", "c"))

        for round_ in range(5):
            await first.put("codes", "c", b"%d" % round_)
            results: list[bytes | None] = []
            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(take, first if i % 2 else second, results)
            assert [r for r in results if r is not None] == [b"%d" % round_]


async def test_the_schema_is_a_single_table_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    async with SQLiteStore.open(path) as store:
        await store.put("ns", "k", b"v", ttl=timedelta(seconds=5))
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        assert tables == [("entries",)]
        (namespace, key, value, expires_at) = db.execute("SELECT * FROM entries").fetchone()
        assert (namespace, key, value) == ("ns", "k", b"v")
        assert isinstance(expires_at, float)
    finally:
        db.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer mcp-front"):
        SQLiteStore(path)


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SQLiteStore(tmp_path / "no" / "such" / "dir.sqlite3")


async def test_constructor_and_aclose(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "state.sqlite3"))
    await store.put("ns", "k", b"v")
    await store.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await store.put("ns", "k", b"v")


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        ("", None),
        ("a", "b"),
        ("user:", "user;"),
        ("a\U0010ffff", "b"),
        ("\U0010ffff", None),
        ("\U0010ffff\U0010ffff", None),
        ("x\ud7ff", "x\ue000"),
    ],
)
def test_prefix_end(prefix: str, end: str | None) -> None:
    assert _prefix_end(prefix) == end

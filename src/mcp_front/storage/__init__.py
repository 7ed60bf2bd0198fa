"""Persistent state: the `Store` protocol and its implementations.

Repositories of the authorization server and the credential vault keep everything they
persist in one `Store`: opaque bytes under namespaced keys, with expiry and the atomic
operations that make codes single-use and refresh-token rotation race-free. `open_store`
builds the store a configuration asks for.
"""

from __future__ import annotations

import os
from pathlib import Path

from mcp_front.config import MemoryStorage, PostgresStorage, RedisStorage, SQLiteStorage
from mcp_front.storage.base import DEFAULT_SCAN_LIMIT, Clock, Store, StoreUnavailable
from mcp_front.storage.memory import MemoryStore
from mcp_front.storage.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_SCAN_LIMIT",
    "Clock",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "StoreUnavailable",
    "open_store",
    "sqlite_path",
]


def sqlite_path(config: SQLiteStorage, base_dir: str | os.PathLike[str] | None = None) -> Path:
    """The database file of `config`: `~` expanded, a relative path taken from `base_dir`.

    `base_dir` defaults to the working directory, as the configuration documents.
    """
    path = Path(config.path).expanduser()
    return path if path.is_absolute() else Path(base_dir if base_dir is not None else Path.cwd()) / path


def open_store(
    config: MemoryStorage | SQLiteStorage | RedisStorage | PostgresStorage,
    *,
    base_dir: str | os.PathLike[str] | None = None,
) -> Store:
    """The store `config` describes, open and ready; the caller closes it with `aclose`.

    Opening a SQLite store creates its file (mode 0600) and schema, a short blocking step
    meant for start-up.
    """
    if isinstance(config, MemoryStorage):
        return MemoryStore()
    if isinstance(config, SQLiteStorage):
        return SQLiteStore(sqlite_path(config, base_dir))
    if isinstance(config, RedisStorage):
        try:
            from mcp_front.storage.redis import RedisStore
        except ImportError:
            raise ValueError(
                'storage kind "redis" needs the redis extra: pip install "mcp-front[redis]"'
            ) from None
        return RedisStore.from_url(config.url.get_secret_value(), prefix=config.prefix)
    if isinstance(config, PostgresStorage):
        try:
            from mcp_front.storage.postgres import PostgresStore
        except ImportError:
            raise ValueError(
                'storage kind "postgres" needs the postgres extra: pip install "mcp-front[postgres]"'
            ) from None
        # It connects, and creates or migrates its schema, at its first operation.
        return PostgresStore(config.url.get_secret_value())
    raise TypeError(f"unknown storage configuration: {type(config).__name__}")

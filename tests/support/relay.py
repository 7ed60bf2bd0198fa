"""A TCP relay in front of a real server, cut and restored at will: a store "going down"
without stopping the machine's Redis or PostgreSQL, whose data survives the outage."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest

from mcp_front.storage import Store, StoreUnavailable
from tests.support.net import free_port


class TCPRelay:
    """Forwards `127.0.0.1:<port>` to `target_host:target_port` in a thread of its own.

    `cut()` drops every open connection and refuses new ones (connection refused) until
    `restore()`, as a server that crashed and came back.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.connections = 0

    def start(self) -> None:
        self._thread.start()
        self._call(self._listen())

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def stop(self) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _call(self, work: object) -> None:
        future = asyncio.run_coroutine_threadsafe(work, self._loop)  # type: ignore[arg-type]
        future.result(30)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )
        self._writers.difference_update((writer, upstream_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.transport.abort()


@contextlib.contextmanager
def relay_to(host: str, port: int) -> Iterator[TCPRelay]:
    relay = TCPRelay(host, port)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


async def outage_and_recovery(store: Store, relay: TCPRelay, kind: str) -> None:
    """What every store on a server does when its server goes away and comes back: it says
    so (naming its kind, never its address), and then carries on with what it held."""
    try:
        await store.put("clients", "kept", b"written before")
        relay.cut()
        with pytest.raises(StoreUnavailable, match=f"{kind} is unreachable") as refused:
            await store.get("clients", "kept")
        assert str(relay.port) not in str(refused.value)
        with pytest.raises(StoreUnavailable):
            await store.put("clients", "other", b"x")
        relay.restore()
        assert await store.get("clients", "kept") == b"written before"
        await store.put("clients", "other", b"after")
        assert await store.get("clients", "other") == b"after"
    finally:
        await store.aclose()

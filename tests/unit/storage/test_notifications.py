"""Notifications between processes sharing a store: two store objects on one server stand
for two replicas; a TCP relay in front of the server is cut to lose the connection."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

from mcp_front.storage import MemoryStore
from mcp_front.storage.notifications import LocalNotifications, Notifications, notifications_of
from mcp_front.storage.postgres import PostgresStore
from mcp_front.storage.redis import RedisStore
from tests.support.relay import TCPRelay, relay_to
from tests.unit.storage.test_postgres import database  # noqa: F401 - a fixture
from tests.unit.storage.test_redis import REDIS_URL, prefix, reachable  # noqa: F401 - fixtures

WAIT = 20.0
"""Seconds for a message to cross, or a listener to reconnect, on a busy machine."""


class Recorder:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.connections = 0
        self.disconnections = 0
        self._changed = anyio.Event()

    def message(self, message: str) -> None:
        self.messages.append(message)
        self._poke()

    async def connected(self) -> None:
        self.connections += 1
        self._poke()

    def disconnected(self) -> None:
        self.disconnections += 1
        self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def until(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(WAIT):
            while not condition():
                await self._changed.wait()


@contextlib.asynccontextmanager
async def listening(notifications: Notifications, topic: str) -> AsyncIterator[Recorder]:
    recorder = Recorder()
    async with anyio.create_task_group() as group:
        group.start_soon(notifications.listen, topic, recorder)
        await recorder.until(lambda: recorder.connections == 1)
        yield recorder
        group.cancel_scope.cancel()


Pair = tuple[Notifications, Notifications, Callable[[], Awaitable[None]]]
Replicas = Callable[[TCPRelay | None], Awaitable[Pair]]


@pytest.fixture(params=["redis", "postgres"])
def replicas(request: pytest.FixtureRequest) -> Replicas:
    """Two processes' notifications on one server: the first through `relay` when given."""
    chosen = request.getfixturevalue("prefix") if request.param == "redis" else ""
    url = request.getfixturevalue("database") if request.param == "postgres" else ""

    async def make(relay: TCPRelay | None) -> Pair:
        if request.param == "redis":
            await (await reachable()).aclose()
            host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0]
            first_url = f"redis://127.0.0.1:{relay.port}/0" if relay else REDIS_URL
            first = RedisStore.from_url(first_url, prefix=chosen)
            second = RedisStore.from_url(f"redis://{host_port}/0", prefix=chosen)
            stores: list[RedisStore | PostgresStore] = [first, second]
        else:
            name = url.rsplit("/", 1)[1]
            first_pg = PostgresStore(f"postgresql://postgres@127.0.0.1:{relay.port}/{name}" if relay else url)
            stores = [first_pg, PostgresStore(url)]

        async def close() -> None:
            for store in stores:
                await store.aclose()

        return stores[0].notifications, stores[1].notifications, close

    return make


def server_address(replicas_param: str) -> tuple[str, int]:
    if replicas_param == "redis":
        host, port = REDIS_URL.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        return host, int(port)
    return "127.0.0.1", 5432


async def test_a_message_reaches_every_process_listening(replicas: Replicas) -> None:
    first, second, close = await replicas(None)
    try:
        async with listening(first, "revocations") as one, listening(second, "revocations") as two:
            async with listening(second, "credentials") as other_topic:
                await first.publish("revocations", "j abc")
                await second.publish("revocations", "s def")
                await one.until(lambda: len(one.messages) == 2)
                await two.until(lambda: len(two.messages) == 2)
                assert one.messages == two.messages == ["j abc", "s def"]
                assert other_topic.messages == []
    finally:
        await close()


async def test_a_lost_connection_is_told_then_listened_again(
    replicas: Replicas, request: pytest.FixtureRequest
) -> None:
    kind = request.node.callspec.params["replicas"]
    with relay_to(*server_address(kind)) as relay:
        first, second, close = await replicas(relay)
        try:
            async with listening(first, "revocations") as one:
                relay.cut()
                await one.until(lambda: one.disconnections >= 1)
                relay.restore()
                await one.until(lambda: one.connections >= 2)
                await second.publish("revocations", "j after")
                await one.until(lambda: "j after" in one.messages)
        finally:
            await close()


async def test_stores_of_one_process_share_local_notifications() -> None:
    store = MemoryStore()
    notifications = notifications_of(store)
    assert isinstance(notifications, LocalNotifications)
    assert notifications_of(store) is notifications
    assert notifications_of(MemoryStore()) is not notifications
    async with listening(notifications, "revocations") as recorder:
        await notifications.publish("revocations", "j x")
        assert recorder.messages == ["j x"]


async def test_topics_and_messages_are_checked() -> None:
    notifications = LocalNotifications()
    with pytest.raises(ValueError, match="topic"):
        await notifications.publish("bad topic", "x")
    with pytest.raises(ValueError, match="at most"):
        await notifications.publish("ok", "x" * 5000)

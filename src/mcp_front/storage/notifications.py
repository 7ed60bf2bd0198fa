"""Notifications between the processes that share a store: what one replica changed, told
to every other at once, so none has to ask the store on the hot path.

A subscriber keeps its own in-memory view (revoked tokens, cached credentials) and is
told three things by `Notifications.listen`: each message; that it is (again) connected,
so it can catch up from the store on whatever it may have missed while it was not; and
that it is disconnected, so it stops trusting its view alone. A message says what changed
(an id, a digest), never a secret.

`LocalNotifications` serves the stores of one process (memory, SQLite); `RedisStore` and
`PostgresStore` carry theirs on Redis pub/sub and PostgreSQL LISTEN/NOTIFY.
"""

from __future__ import annotations

import logging
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import anyio

__all__ = [
    "RECONNECT_DELAYS",
    "Listener",
    "LocalNotifications",
    "Notifications",
    "check_topic",
    "listen_resuming",
    "notifications_of",
]

logger = logging.getLogger("mcp_front.storage")

RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
"""Seconds between attempts to listen again after the connection was lost; the last repeats."""

MAX_MESSAGE_BYTES = 4000
"""The longest message any store carries (PostgreSQL's NOTIFY stops short of 8000 bytes)."""


class Listener(Protocol):
    """What `Notifications.listen` tells one subscriber."""

    def message(self, message: str) -> None:
        """A message published on the topic, by this process or another."""
        ...

    async def connected(self) -> None:
        """Listening (again): every later message will arrive; catch up on earlier ones."""
        ...

    def disconnected(self) -> None:
        """Messages may be missed from now on, until `connected` is called again."""
        ...


@runtime_checkable
class Notifications(Protocol):
    """Messages on named topics between every process sharing one store."""

    async def publish(self, topic: str, message: str) -> None:
        """Send `message` to every listener of `topic`, in every process; raises
        `StoreUnavailable` when it cannot be sent."""
        ...

    async def listen(self, topic: str, listener: Listener) -> None:
        """Tell `listener` of every message on `topic` until cancelled, reconnecting by
        itself after the store's server was lost."""
        ...


@runtime_checkable
class NotifyingStore(Protocol):
    """A store that carries notifications between processes of its own."""

    @property
    def notifications(self) -> Notifications: ...


def check_topic(topic: str, message: str) -> None:
    if not topic or not topic.replace("_", "").isalnum() or not topic.isascii() or len(topic) > 40:
        raise ValueError(f"a topic is 1 to 40 ASCII letters, digits or underscores, not {topic!r}")
    if len(message.encode()) > MAX_MESSAGE_BYTES:
        raise ValueError(f"a notification holds at most {MAX_MESSAGE_BYTES} bytes")


class LocalNotifications:
    """Notifications within one process: the stores that only one process uses."""

    def __init__(self) -> None:
        self._listeners: defaultdict[str, list[Listener]] = defaultdict(list)

    async def publish(self, topic: str, message: str) -> None:
        check_topic(topic, message)
        for listener in list(self._listeners[topic]):
            listener.message(message)

    async def listen(self, topic: str, listener: Listener) -> None:
        check_topic(topic, "")
        await listener.connected()
        self._listeners[topic].append(listener)
        try:
            await anyio.sleep_forever()
        finally:
            self._listeners[topic].remove(listener)


async def listen_resuming(
    topic: str,
    listener: Listener,
    listen_once: Callable[[Listener], Awaitable[None]],
    errors: tuple[type[BaseException], ...],
) -> None:
    """Run `listen_once` again and again until cancelled: after each end (one of `errors`,
    or a lost connection), `listener` is told it is disconnected, and the next attempt waits
    a little longer while none succeeds; a successful one starts the delays over."""
    failures = 0
    while True:
        heard = _Heard(listener)
        try:
            await listen_once(heard)
        except errors as error:
            if failures == 0 or heard.reached:
                # Once an outage; the error's kind only, as a driver's message names the server.
                kind = type(error).__name__
                logger.warning("notifications on %s interrupted (%s); listening again", topic, kind)
        listener.disconnected()
        failures = 1 if heard.reached else failures + 1
        await anyio.sleep(RECONNECT_DELAYS[min(failures - 1, len(RECONNECT_DELAYS) - 1)])


class _Heard:
    """A listener passed on, noting whether the attempt got as far as listening."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self.reached = False

    def message(self, message: str) -> None:
        self._listener.message(message)

    async def connected(self) -> None:
        self.reached = True
        await self._listener.connected()

    def disconnected(self) -> None:
        self._listener.disconnected()


_local: weakref.WeakKeyDictionary[object, LocalNotifications] = weakref.WeakKeyDictionary()


def notifications_of(store: object) -> Notifications:
    """The notifications of `store`: its own when it is shared between processes, else one
    `LocalNotifications` per store object."""
    if isinstance(store, NotifyingStore):
        return store.notifications
    found = _local.get(store)
    if found is None:
        found = _local[store] = LocalNotifications()
    return found

"""`ReplicaDirectory`: the replicas of one gateway that share a store, and where each listens.

Each replica registers its id and internal address in the store under a short time to
live, renews it on a heartbeat, and keeps every other replica's entry in memory: a
request only ever reads this copy, and a replica whose id it does not know makes it
look again at most once a second. An address is only ever taken from the store, never
from a request, so a client cannot point the gateway anywhere.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

from mcp_front.storage.base import Store, StoreUnavailable

logger = logging.getLogger("mcp_front.transports")

NAMESPACE = "replicas"
HEARTBEAT = timedelta(seconds=5)
"""How often a replica renews its entry and reads the others'."""
LIVENESS = timedelta(seconds=20)
"""How long an entry outlives its last renewal: a replica silent that long is gone."""
LOOKUP_INTERVAL = 1.0
"""The least time between two reads of the directory for an id it did not know."""
UNREACHABLE_FOR = LIVENESS.total_seconds()
"""How long a replica that refused a connection is taken for dead without trying again."""
SEPARATOR = "."
"""Between the owner's id and the random part of a session id; neither part contains it."""
MAX_SESSION_ID = 128
"""Longer ids were made by no replica: they are never looked up in the store."""


def owner_of(session_id: str) -> str | None:
    """The id of the replica that created a session, as its id says; `None` for an id
    that does not name one (a single replica's, or made up)."""
    if len(session_id) > MAX_SESSION_ID:
        return None
    replica, separator, _ = session_id.partition(SEPARATOR)
    return replica if separator and replica else None


def check_address(address: str) -> str:
    """An internal address: an http(s) origin, and nothing after it."""
    parts = urlsplit(address)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        # The address is not repeated: one with a user name may carry a password.
        raise ValueError("a replica's address must be an http(s) origin such as http://10.0.0.5:8080")
    return f"{parts.scheme}://{parts.netloc}"


class ReplicaDirectory:
    """This replica's entry in the store, and a cached copy of the others'."""

    def __init__(
        self,
        store: Store,
        address: str,
        *,
        replica_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = replica_id or secrets.token_hex(6)
        self.address = check_address(address)
        self._store = store
        self._clock = clock
        self._addresses: dict[str, str] = {}
        self._unreachable: dict[str, float] = {}
        self._last_read = float("-inf")

    async def register(self) -> None:
        """Write or renew this replica's entry."""
        entry = json.dumps({"address": self.address}).encode()
        await self._store.put(NAMESPACE, self.id, entry, ttl=LIVENESS)

    async def read(self) -> None:
        """Replace the cached copy with the store's entries."""
        self._last_read = self._clock()
        addresses: dict[str, str] = {}
        for replica_id, value in await self._store.scan(NAMESPACE, limit=10_000):
            try:
                address = check_address(json.loads(value)["address"])
            except (ValueError, KeyError, TypeError):
                logger.warning("replica directory: ignored an entry without a valid address")
                continue
            if replica_id != self.id:
                addresses[replica_id] = address
        self._addresses = addresses

    async def heartbeat(self) -> None:
        """Renew this replica's entry and read the others'; a store that does not answer
        leaves the cached copy as it was."""
        try:
            await self.register()
            await self.read()
        except StoreUnavailable as error:
            logger.warning("replica directory not renewed: %s", error)

    async def leave(self) -> None:
        """Remove this replica's entry, so the others take its sessions over at once."""
        await self._store.delete(NAMESPACE, self.id)

    async def lookup(self, replica_id: str) -> str | None:
        """The address of another live replica, or `None` when it is unknown, gone, or
        refused a connection lately."""
        if replica_id == self.id or self.refused_lately(replica_id):
            return None
        if replica_id not in self._addresses and self._clock() - self._last_read >= LOOKUP_INTERVAL:
            await self.read()
        return self._addresses.get(replica_id)

    async def gone(self, replica_id: str) -> bool:
        """Whether a replica is gone for sure: it refused a connection lately, or the store
        itself, read now, no longer lists it. A replica that just started is listed."""
        if self.refused_lately(replica_id):
            return True
        await self.read()
        return replica_id not in self._addresses

    def refused_lately(self, replica_id: str) -> bool:
        refused_at = self._unreachable.get(replica_id)
        if refused_at is None:
            return False
        if self._clock() - refused_at < UNREACHABLE_FOR:
            return True
        del self._unreachable[replica_id]
        return False

    def unreachable(self, replica_id: str) -> None:
        """Note that a replica did not take a connection: it is dead or cut off."""
        self._unreachable[replica_id] = self._clock()
        logger.warning("replica %s does not answer; its sessions are taken over", replica_id)

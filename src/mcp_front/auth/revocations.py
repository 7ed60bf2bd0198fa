"""`RevokedAccessTokens`: access tokens refused before they expire, on every replica at once.

Access tokens are stateless JWTs, so a revocation is a record: the token's id (`jti`), the
sign-in session (`sid`, every token of a refresh family), or the client (every token issued
to it). Each record is kept until every token it covers would have expired anyway.

Every process keeps all live records in memory and learns of new ones through the store's
notifications (`revocations` topic), so checking a token costs no store round trip: a
revocation made on one replica is refused by every other within the time a notification
takes to cross (milliseconds). Whenever the process (re)connects to the notifications it
reads every record again, so nothing revoked while it was not listening is missed; while
it is not listening it asks the store. When the store cannot answer either, it goes by
what it already knows for `UNCHECKED_GRACE` seconds, then refuses to vouch for any token
(`StoreUnavailable`: the request gets 503) until it hears the store again, so a replica
cut off from the store alone cannot keep honouring a token revoked elsewhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

import anyio

from mcp_front.crypto import digest
from mcp_front.storage import Store
from mcp_front.storage.base import StoreUnavailable, scan_all
from mcp_front.storage.notifications import Notifications, notifications_of

__all__ = [
    "REVOCATIONS_TOPIC",
    "REVOKED_CLIENT_NAMESPACE",
    "REVOKED_JTI_NAMESPACE",
    "REVOKED_SESSION_NAMESPACE",
    "RevokedAccessTokens",
]

logger = logging.getLogger("mcp_front.auth")

REVOKED_JTI_NAMESPACE = "oauth.revoked.jti"
REVOKED_SESSION_NAMESPACE = "oauth.revoked.sessions"
REVOKED_CLIENT_NAMESPACE = "oauth.revoked.clients"
REVOCATIONS_TOPIC = "revocations"

VERIFICATION_LEEWAY = timedelta(seconds=60)
"""Outlasts the leeway with which an expired access token is still accepted."""

_KINDS = {"j": REVOKED_JTI_NAMESPACE, "s": REVOKED_SESSION_NAMESPACE, "c": REVOKED_CLIENT_NAMESPACE}
UNCHECKED_GRACE = 30
"""Seconds a replica that hears neither notifications nor the store accepts access tokens on
what it knows: a blip goes unnoticed, while a replica cut off from the store for longer
answers 503 rather than honour a token that may have been revoked elsewhere meanwhile."""
STORE_RETRY_SECONDS = 2.0
_RESYNC_SECONDS = 300.0
"""Even while listening, every record is read again this often: a notification lost after
its record was written (a publish that failed) is noticed within this time."""


class RevokedAccessTokens:
    """Revoked access tokens, by id, by session or by client; see the module's docstring.

    `run()` keeps the in-memory view current; without it running (a process with no
    notifications yet), every check asks the store.
    """

    def __init__(
        self,
        store: Store,
        *,
        access_token_ttl: timedelta = timedelta(hours=1),
        clock: Callable[[], float] = time.time,
        notifications: Notifications | None = None,
    ) -> None:
        self._store = store
        self._session_ttl = access_token_ttl + VERIFICATION_LEEWAY
        self._clock = clock
        self._notifications = notifications if notifications is not None else notifications_of(store)
        self._known: dict[str, float | None] = {}
        """`<kind><key digest>` → when the record expires (epoch seconds; None: never)."""
        self._listening = False
        self._unreachable_since: float | None = None
        """Since when neither notifications nor the store could be heard (None: they can)."""
        self._retry_store_at = 0.0

    @property
    def listening(self) -> bool:
        """Whether the in-memory view is complete, so checks make no store round trip."""
        return self._listening

    # -- revoking --------------------------------------------------------------------------------

    async def revoke(self, jti: str, expires_at: float) -> None:
        """Revoke the access token `jti` that expires at `expires_at` (epoch seconds)."""
        remaining = timedelta(seconds=max(expires_at - self._clock(), 0.0)) + VERIFICATION_LEEWAY
        await self._record("j", jti, remaining)

    async def revoke_session(self, session: str) -> None:
        """Revoke every access token that carries `sid` `session`."""
        await self._record("s", session, self._session_ttl)

    async def revoke_client(self, client_id: str) -> None:
        """Revoke every access token issued to `client_id` so far."""
        await self._record("c", client_id, self._session_ttl)

    async def _record(self, kind: str, identifier: str, ttl: timedelta) -> None:
        key = _key(identifier)
        await self._store.put(_KINDS[kind], key, b"1", ttl=ttl)
        expires_at = self._clock() + ttl.total_seconds()
        self._learn(kind + key, expires_at)
        try:
            await self._notifications.publish(REVOCATIONS_TOPIC, f"{kind}{key} {expires_at!r}")
        except StoreUnavailable:
            # Recorded, so every replica learns of it when it next reads the records.
            logger.warning("a revocation could not be announced to the other replicas; they will read it")

    # -- checking --------------------------------------------------------------------------------

    async def is_revoked(self, jti: str, session: str | None = None, client_id: str | None = None) -> bool:
        """Whether the access token `jti` (of `session` and `client_id`, when known) is revoked."""
        asked = [("j", jti), ("s", session), ("c", client_id)]
        wanted = [(kind, _key(identifier)) for kind, identifier in asked if identifier is not None]
        if any(self._knows(kind + key) for kind, key in wanted):
            return True
        if self._listening:
            return False
        now = self._clock()
        if self._unreachable_since is not None and now < self._retry_store_at:
            return self._known_only(now)
        try:
            for kind, key in wanted:
                if await self._store.get(_KINDS[kind], key) is not None:
                    # At the latest it lapses a session's lifetime from now.
                    self._learn(kind + key, self._clock() + self._session_ttl.total_seconds())
                    return True
        except StoreUnavailable:
            if self._unreachable_since is None:
                self._unreachable_since = now
                logger.warning(
                    "the store is unreachable: tokens are checked against known revocations for %d "
                    "seconds, then refused until it answers again",
                    UNCHECKED_GRACE,
                )
            # Not asked again at once: a store that does not answer would slow every request.
            self._retry_store_at = now + STORE_RETRY_SECONDS
            return self._known_only(now)
        self._unreachable_since = None
        return False

    def _known_only(self, now: float) -> bool:
        """Not revoked as far as this replica knows, for a while; after that, a revocation
        made elsewhere could be missed for as long as the outage lasts: refuse to say."""
        assert self._unreachable_since is not None
        if now - self._unreachable_since > UNCHECKED_GRACE:
            raise StoreUnavailable("revocations cannot be checked: the store has been unreachable too long")
        return False

    def _knows(self, known_key: str) -> bool:
        if known_key not in self._known:
            return False
        expires_at = self._known[known_key]
        if expires_at is not None and expires_at <= self._clock():
            del self._known[known_key]
            return False
        return True

    def _learn(self, known_key: str, expires_at: float | None) -> None:
        self._known[known_key] = expires_at

    # -- staying current -------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the in-memory view current until cancelled."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._notifications.listen, REVOCATIONS_TOPIC, self)
            while True:
                await anyio.sleep(_RESYNC_SECONDS)
                if self._listening:
                    try:
                        await self.resync()
                    except StoreUnavailable:
                        logger.warning("revocations could not be read again: the store is unreachable")

    def message(self, message: str) -> None:
        known_key, _, expires = message.partition(" ")
        if known_key[:1] not in _KINDS:
            return
        try:
            self._learn(known_key, float(expires))
        except ValueError:
            self._learn(known_key, None)

    async def connected(self) -> None:
        await self.resync()
        self._listening = True
        self._unreachable_since = None

    def disconnected(self) -> None:
        self._listening = False

    async def resync(self) -> int:
        """Read every record from the store; how many there are."""
        # A scan does not say when a record expires: at the latest, a session's lifetime from now.
        latest = self._clock() + self._session_ttl.total_seconds()
        found: dict[str, float | None] = {}
        for kind, namespace in _KINDS.items():
            async for key, _ in scan_all(self._store, namespace):
                found[kind + key] = self._known.get(kind + key, latest)
        # What a notification taught meanwhile is newer than the scan, and is kept.
        for known_key in list(self._known):
            if known_key not in found and self._knows(known_key):
                found[known_key] = self._known[known_key]
        self._known = found
        return len(found)


def _key(identifier: str) -> str:
    # A digest keeps the key within what every store accepts, whatever the id contains.
    return digest(identifier).hex()

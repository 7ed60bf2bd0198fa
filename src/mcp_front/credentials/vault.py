"""`CredentialVault`: each user's service credentials, encrypted in the `Store`.

A credential lives in namespace ``credentials`` under ``<user digest>/<service>``: the
user's part is the SHA-256 of the principal's key, so the store shows no email, and every
credential of one user shares a prefix (listing them, or removing them all, is one scan).

The value is sealed by the gateway's `Keyring` (AES-256-GCM with a key id) with the user
and the service bound as associated data: a value copied into another user's record, or
another service's, fails to open. A value sealed under an older key is re-sealed under the
current one when it is read, and `reseal_all()` does so for every record at start-up, so
rotating the key never orphans a credential.

Reads are cached in the process (a tool call must not wait on the store); the vault's own
writes update the cache at once, and every write is announced on the store's notifications
(`credentials` topic, naming the record, never its value) so the other replicas drop their
copy: a credential disconnected or renewed on one replica is used by none a moment later.
While the vault is not listening (`run()` not running, or the connection lost) a cached
read is trusted for `cache_ttl` only, and whatever was cached is dropped when it listens again.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from mcp_front.credentials.records import Credential
from mcp_front.crypto import DecryptionError, Keyring, digest
from mcp_front.errors import MCPFrontError
from mcp_front.storage import Store
from mcp_front.storage.base import StoreUnavailable, scan_all
from mcp_front.storage.notifications import notifications_of

__all__ = ["CREDENTIALS_NAMESPACE", "CredentialVault", "SealedCredential", "VaultError"]

logger = logging.getLogger(__name__)

CREDENTIALS_NAMESPACE = "credentials"
DEFAULT_CACHE_TTL = timedelta(seconds=30)
LISTENING_CACHE_TTL = timedelta(minutes=10)
"""How long a cached read is trusted while every write is being announced."""
CREDENTIALS_TOPIC = "credentials"
_RESEAL_PAGE = 1000


class VaultError(MCPFrontError):
    """A stored credential could not be opened (a missing key, or a tampered record)."""


@dataclass(frozen=True, slots=True)
class SealedCredential:
    """A credential as read, with the exact stored value it came from, so that a later write
    can be made conditional on nobody having changed it since (`CredentialVault.swap`)."""

    credential: Credential
    sealed: bytes


class CredentialVault:
    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        *,
        cache_ttl: timedelta = DEFAULT_CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._cache_ttl = cache_ttl.total_seconds()
        self._clock = clock
        self._cache: dict[str, tuple[float, SealedCredential | None]] = {}
        """Record key → (when read, what was read)."""
        self._notifications = notifications_of(store)
        self._origin = secrets.token_hex(8)
        """Names this vault's announcements, so it does not drop what it just wrote."""
        self._listening = False

    async def run(self) -> None:
        """Drop what other replicas change from the cache, until cancelled."""
        await self._notifications.listen(CREDENTIALS_TOPIC, self)

    def message(self, message: str) -> None:
        origin, _, key = message.partition(" ")
        if origin != self._origin:
            self._cache.pop(key, None)

    async def connected(self) -> None:
        self._cache.clear()
        self._listening = True

    def disconnected(self) -> None:
        self._listening = False

    async def _announce(self, key: str) -> None:
        try:
            await self._notifications.publish(CREDENTIALS_TOPIC, f"{self._origin} {key}")
        except StoreUnavailable:
            logger.warning(
                "a credential change could not be announced: other replicas may use their copy "
                "for up to %d minutes",
                LISTENING_CACHE_TTL.total_seconds() // 60,
            )

    async def get(self, user: str, service: str) -> Credential | None:
        """The credential of `user` (a principal's key) for `service`, or None."""
        loaded = await self.load(user, service)
        return loaded.credential if loaded is not None else None

    async def load(self, user: str, service: str, *, fresh: bool = False) -> SealedCredential | None:
        """The credential with its stored value; `fresh` skips the cache."""
        now = self._clock()
        key = _key(user, service)
        cached = None if fresh else self._cache.get(key)
        trusted = LISTENING_CACHE_TTL.total_seconds() if self._listening else self._cache_ttl
        if cached is not None and now - cached[0] < trusted:
            return cached[1]
        sealed = await self._store.get(CREDENTIALS_NAMESPACE, key)
        loaded = None if sealed is None else await self._open(user, service, sealed)
        self._cache[key] = (now, loaded)
        return loaded

    async def put(self, user: str, credential: Credential) -> None:
        """Keep `credential` for `user`, replacing what was there."""
        sealed = self._seal(user, credential)
        await self._store.put(CREDENTIALS_NAMESPACE, _key(user, credential.service), sealed)
        self._remember(user, credential.service, SealedCredential(credential, sealed))
        await self._announce(_key(user, credential.service))

    async def swap(self, user: str, expected: SealedCredential, new: Credential) -> bool:
        """Replace `expected` by `new` only if the stored value is still `expected`'s:
        of two writers that read the same record, one wins and the other learns it lost."""
        sealed = self._seal(user, new)
        swapped = await self._store.compare_and_set(
            CREDENTIALS_NAMESPACE, _key(user, new.service), expected.sealed, sealed
        )
        if swapped:
            self._remember(user, new.service, SealedCredential(new, sealed))
            await self._announce(_key(user, new.service))
        else:
            self._cache.pop(_key(user, new.service), None)
        return swapped

    async def delete(self, user: str, service: str) -> Credential | None:
        """Remove the credential; the one removed, or None."""
        sealed = await self._store.take(CREDENTIALS_NAMESPACE, _key(user, service))
        self._remember(user, service, None)
        await self._announce(_key(user, service))
        if sealed is None:
            return None
        try:
            return self._decrypt(user, service, sealed)
        except VaultError:
            return None

    async def forget_user(self, user: str) -> dict[str, Credential]:
        """Remove every credential of `user`; those removed that could be opened, by service."""
        removed = {}
        for service in await self.of_user(user):
            credential = await self.delete(user, service)
            if credential is not None:
                removed[service] = credential
        prefix = _user_prefix(user)
        for key, _ in await self._store.scan(CREDENTIALS_NAMESPACE, prefix):
            # Records no key opens any more are removed all the same.
            await self.delete(user, key.removeprefix(prefix))
        return removed

    async def of_user(self, user: str) -> dict[str, Credential]:
        """Every credential `user` has, by service; one that no key opens is left out (and logged)."""
        found: dict[str, Credential] = {}
        prefix = _user_prefix(user)
        for key, sealed in await self._store.scan(CREDENTIALS_NAMESPACE, prefix):
            service = key.removeprefix(prefix)
            try:
                found[service] = self._decrypt(user, service, sealed)
            except VaultError as error:
                logger.warning("credential for service %s is unreadable: %s", service, error)
        return found

    async def reseal_all(self) -> int:
        """Re-seal under the current key every credential sealed under an older one; how many.

        Records are visited by the first two hex digits of their user's digest, a page each.
        """
        resealed = 0
        async for key, sealed in scan_all(self._store, CREDENTIALS_NAMESPACE, page=_RESEAL_PAGE):
            if not self._keyring.needs_rotation(sealed):
                continue
            user_digest, _, service = key.partition("/")
            if await self._reseal_by_key(key, user_digest, service, sealed):
                resealed += 1
        return resealed

    # -- sealing ---------------------------------------------------------------------------

    async def _open(self, user: str, service: str, sealed: bytes) -> SealedCredential:
        credential = self._decrypt(user, service, sealed)
        if self._keyring.needs_rotation(sealed):
            resealed = self._seal(user, credential)
            if await self._store.compare_and_set(
                CREDENTIALS_NAMESPACE, _key(user, service), sealed, resealed
            ):
                sealed = resealed
        return SealedCredential(credential, sealed)

    async def _reseal_by_key(self, key: str, user_digest: str, service: str, sealed: bytes) -> bool:
        # Without the user's key in clear only the stored context can open it: the record
        # keeps its binding because the context is derived from the digest, not the email.
        context = _context_of_digest(user_digest, service)
        try:
            plain = self._keyring.decrypt(sealed, context=context)
        except DecryptionError as error:
            logger.warning("credential for service %s could not be re-sealed: %s", service, error)
            return False
        resealed = self._keyring.encrypt(plain, context=context)
        return await self._store.compare_and_set(CREDENTIALS_NAMESPACE, key, sealed, resealed)

    def _seal(self, user: str, credential: Credential) -> bytes:
        return self._keyring.encrypt(credential.to_bytes(), context=_context(user, credential.service))

    def _decrypt(self, user: str, service: str, sealed: bytes) -> Credential:
        try:
            credential = Credential.from_bytes(self._keyring.decrypt(sealed, context=_context(user, service)))
        except DecryptionError as error:
            raise VaultError(f"the credential for service '{service}' cannot be opened: {error}") from None
        if credential.service != service:
            raise VaultError(f"the record for service '{service}' holds another service's credential")
        return credential

    def _remember(self, user: str, service: str, loaded: SealedCredential | None) -> None:
        self._cache[_key(user, service)] = (self._clock(), loaded)


def _user_prefix(user: str) -> str:
    return digest(user).hex() + "/"


def _key(user: str, service: str) -> str:
    return _user_prefix(user) + service


def _context(user: str, service: str) -> bytes:
    return _context_of_digest(digest(user).hex(), service)


def _context_of_digest(user_digest: str, service: str) -> bytes:
    return f"credentials/{user_digest}/{service}".encode()

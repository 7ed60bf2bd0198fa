"""Where the access-token signing keys come from: the configuration, or the store.

Without a configured `signingKey`, the first gateway to start generates one and keeps it
in the store, sealed by the keyring, so every replica signs with the same key and a
restart does not invalidate the tokens already issued. Rotation puts a new key in front;
the old ones stay for verification until the tokens they signed have expired.

A rotation is announced on the store's notifications (`signing_keys`), and every running
replica loads the new keys at once (`SigningKeysWatch`), as it does whenever it
reconnects: a token signed by one replica after a rotation verifies on every other.
"""

from __future__ import annotations

import json
import logging

import anyio

from mcp_front.auth.tokens import SigningKey, SigningKeys, TokenIssuer
from mcp_front.crypto.keyring import Keyring
from mcp_front.storage import Store, StoreUnavailable
from mcp_front.storage.notifications import notifications_of

logger = logging.getLogger("mcp_front.auth")

SIGNING_KEYS_TOPIC = "signing_keys"

NAMESPACE = "oauth.signing-keys"
_KEY = "keys"
_CONTEXT = b"mcp-front signing keys"


async def load_signing_keys(
    store: Store, keyring: Keyring, *, configured_pem: str | None = None
) -> SigningKeys:
    """The signing keys, generating and storing the first one if there is none yet."""
    if configured_pem is not None:
        return SigningKeys(SigningKey.from_pem(configured_pem))
    while True:
        sealed = await store.get(NAMESPACE, _KEY)
        if sealed is not None:
            keys = _open(sealed, keyring)
            if keyring.needs_rotation(sealed):
                # Re-seal under the current encryption key; losing the race is harmless.
                await store.compare_and_set(NAMESPACE, _KEY, sealed, _seal(keys, keyring))
            return keys
        keys = SigningKeys(SigningKey.generate())
        # Of several replicas starting at once, one stores its key and the others read it.
        if await store.add(NAMESPACE, _KEY, _seal(keys, keyring)):
            return keys


async def rotate_signing_keys(store: Store, keyring: Keyring, *, keep: int = 2) -> SigningKeys:
    """Put a new key in front; keep `keep` previous ones for verification."""
    while True:
        sealed = await store.get(NAMESPACE, _KEY)
        current = _open(sealed, keyring) if sealed is not None else None
        new = SigningKey.generate()
        keys = current.rotate(new, keep=keep) if current is not None else SigningKeys(new)
        if await store.compare_and_set(NAMESPACE, _KEY, sealed, _seal(keys, keyring)):
            try:
                await notifications_of(store).publish(SIGNING_KEYS_TOPIC, keys.current.kid)
            except StoreUnavailable:
                logger.warning("the rotation could not be announced: running replicas use it once restarted")
            return keys


class SigningKeysWatch:
    """Keeps `issuer`'s keys those of the store, loading them again when a rotation is
    announced and whenever the notifications (re)connect."""

    def __init__(self, store: Store, keyring: Keyring, issuer: TokenIssuer) -> None:
        self._store = store
        self._keyring = keyring
        self._issuer = issuer
        self._changed = anyio.Event()

    def message(self, message: str) -> None:
        self._changed.set()

    async def connected(self) -> None:
        self._changed.set()

    def disconnected(self) -> None:
        pass

    async def run(self) -> None:
        """Follow the stored keys until cancelled."""
        async with anyio.create_task_group() as group:
            group.start_soon(notifications_of(self._store).listen, SIGNING_KEYS_TOPIC, self)
            while True:
                await self._changed.wait()
                self._changed = anyio.Event()
                try:
                    await self.reload()
                except StoreUnavailable:
                    logger.warning("the signing keys could not be read again: the store is unreachable")

    async def reload(self) -> bool:
        """Load the stored keys; True if they differ from those in use."""
        sealed = await self._store.get(NAMESPACE, _KEY)
        if sealed is None:
            return False
        keys = _open(sealed, self._keyring)
        if _kids(keys) == _kids(self._issuer.keys):
            return False
        self._issuer.keys = keys
        logger.info("signing access tokens with key %s, loaded from the store", keys.current.kid)
        return True


def _kids(keys: SigningKeys) -> list[str]:
    return [keys.current.kid, *(key.kid for key in keys.previous)]


def _seal(keys: SigningKeys, keyring: Keyring) -> bytes:
    pems = [keys.current.to_pem(), *(key.to_pem() for key in keys.previous)]
    return keyring.encrypt(json.dumps(pems).encode(), context=_CONTEXT)


def _open(sealed: bytes, keyring: Keyring) -> SigningKeys:
    pems: list[str] = json.loads(keyring.decrypt(sealed, context=_CONTEXT))
    current, *previous = (SigningKey.from_pem(pem) for pem in pems)
    return SigningKeys(current, previous)

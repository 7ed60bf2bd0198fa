"""Where the access-token signing keys come from: the configuration, or the store.

Without a configured `signingKey`, the first gateway to start generates one and keeps it
in the store, sealed by the keyring, so every replica signs with the same key and a
restart does not invalidate the tokens already issued. Rotation puts a new key in front;
the old ones stay for verification until the tokens they signed have expired.
"""

from __future__ import annotations

import json

from mcp_front.auth.tokens import SigningKey, SigningKeys
from mcp_front.crypto.keyring import Keyring
from mcp_front.storage import Store

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
            return keys


def _seal(keys: SigningKeys, keyring: Keyring) -> bytes:
    pems = [keys.current.to_pem(), *(key.to_pem() for key in keys.previous)]
    return keyring.encrypt(json.dumps(pems).encode(), context=_CONTEXT)


def _open(sealed: bytes, keyring: Keyring) -> SigningKeys:
    pems: list[str] = json.loads(keyring.decrypt(sealed, context=_CONTEXT))
    current, *previous = (SigningKey.from_pem(pem) for pem in pems)
    return SigningKeys(current, previous)

"""Hashing and comparison of secrets: nothing here ever returns or logs a secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def random_token(nbytes: int = 32) -> str:
    """An unguessable URL-safe identifier."""
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> bytes:
    """SHA-256 of a high-entropy secret (a token), for storage and constant-time comparison."""
    return hashlib.sha256(secret.encode()).digest()


def matches_any(candidate: bytes, digests: list[bytes]) -> int | None:
    """Index of the digest equal to `candidate`, comparing against every one so timing says nothing."""
    found: int | None = None
    for index, known in enumerate(digests):
        if hmac.compare_digest(candidate, known) and found is None:
            found = index
    return found


def fingerprint(secret: str, key: bytes | None = None) -> bytes:
    """A keyed digest (keyed BLAKE2b, a MAC) of a configured secret (a static token, a user
    name and password).

    The key is `key` (replicas sharing a store derive it from their keyring, so one
    caller is one caller to all of them), else random and only in this process; either
    way a fingerprint means nothing without the key. Checking a low-entropy password
    costs one HMAC rather than a slow hash: the secret is in the configuration this
    process already holds, so a slow hash would protect nothing, and would let anyone
    sending wrong passwords burn the CPU.
    """
    return hashlib.blake2b(secret.encode(), key=key or _PROCESS_KEY, digest_size=32).digest()


_PROCESS_KEY = secrets.token_bytes(32)

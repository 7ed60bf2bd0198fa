"""Hashing and comparison of secrets: nothing here ever returns or logs a secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


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


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A salted scrypt hash: a low-entropy password is never kept in memory as itself."""

    salt: bytes
    value: bytes

    @classmethod
    def of(cls, password: str) -> PasswordHash:
        salt = secrets.token_bytes(16)
        return cls(salt, _scrypt(password, salt))

    def verify(self, password: str) -> bool:
        return hmac.compare_digest(_scrypt(password, self.salt), self.value)

    def __repr__(self) -> str:
        return "PasswordHash(<hidden>)"


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)

"""`Keyring`: AES-256-GCM encryption of secrets at rest, under key ids so the key can be rotated.

A stored value is a self-describing text token::

    v1.<kid>.<nonce, base64url>.<ciphertext and tag, base64url>

The key id says which key sealed it, so a keyring holding the new key first and the old
keys after it still opens every stored value, and `needs_rotation()` finds those to re-seal.
The caller's `context` (a namespace such as ``b"credentials:notion:alice"``) is bound as
associated data together with the version and key id: a value sealed for one place cannot
be copied to another and opened there.

No message raised here ever contains key material, plaintext or ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mcp_front.errors import MCPFrontError

__all__ = ["DecryptionError", "Keyring", "key_id"]

_VERSION = "v1"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KID_LABEL = b"mcp-front key id"
_DERIVATION_LABEL = b"mcp-front derived keys"


class DecryptionError(MCPFrontError):
    """A stored value could not be opened: wrong context, unknown key, or tampering.

    `kid` is the key id named by the value (``None`` when the value is not even a token).
    """

    def __init__(self, message: str, *, kid: str | None = None) -> None:
        super().__init__(message)
        self.kid = kid


def key_id(key: bytes) -> str:
    """The public name of a key: 8 bytes of HMAC-SHA256(key, label), hex.

    A keyed hash, not a hash of the key, so the id reveals nothing usable about the key.
    """
    return hmac.new(key, _KID_LABEL, hashlib.sha256).digest()[:8].hex()


class Keyring:
    """AES-256-GCM keys: the first encrypts, every one decrypts."""

    __slots__ = ("_ciphers", "_current", "_derivation_roots")

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        ciphers: dict[str, AESGCM] = {}
        roots: dict[str, bytes] = {}
        for index, key in enumerate(keys):
            if not isinstance(key, bytes | bytearray) or len(key) != _KEY_BYTES:
                size = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
                raise ValueError(f"key {index} must be exactly {_KEY_BYTES} bytes (got {size})")
            kid = key_id(bytes(key))
            if kid in ciphers:
                raise ValueError(f"key {index} repeats an earlier key (key id {kid})")
            ciphers[kid] = AESGCM(bytes(key))
            roots[kid] = hmac.new(bytes(key), _DERIVATION_LABEL, hashlib.sha256).digest()
        self._ciphers = ciphers
        self._derivation_roots = roots
        self._current = next(iter(ciphers))

    @classmethod
    def from_secret(cls, text: str, previous: Sequence[str] = ()) -> Keyring:
        """A keyring from the configuration's `encryptionKey` (and older keys still to be read).

        Each secret is one of, after stripping surrounding whitespace:

        * 64 hexadecimal characters (``openssl rand -hex 32``);
        * base64 or base64url of 32 bytes, padded or not (``openssl rand -base64 32``);
        * text whose UTF-8 encoding is exactly 32 bytes, used as is (the Go mcp-front's format).

        Hex is tried first, then raw text, then base64; their lengths keep them apart.
        """
        return cls([_parse_secret(secret, index) for index, secret in enumerate([text, *previous])])

    @property
    def current_kid(self) -> str:
        """The id of the key that encrypts."""
        return self._current

    @property
    def kids(self) -> tuple[str, ...]:
        """The ids of every key, current first."""
        return tuple(self._ciphers)

    def encrypt(self, plaintext: bytes, *, context: bytes) -> bytes:
        """Seal `plaintext` under the current key, bound to `context`."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(nonce, plaintext, _aad(self._current, context))
        return b".".join([_VERSION.encode(), self._current.encode(), _b64(nonce), _b64(sealed)])

    def decrypt(self, token: bytes | str, *, context: bytes) -> bytes:
        """Open a token made by `encrypt` with the same `context` under any key of this ring."""
        kid, nonce, sealed = _split(token)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise DecryptionError(f"value was encrypted under unknown key id {kid}", kid=kid)
        try:
            return cipher.decrypt(nonce, sealed, _aad(kid, context))
        except InvalidTag:
            raise DecryptionError(
                f"value under key id {kid} failed authentication (wrong context or tampered)", kid=kid
            ) from None

    def derived_keys(self, purpose: bytes) -> tuple[bytes, ...]:
        """A 32-byte key for `purpose` from each key of the ring, current first.

        Every process holding the same keys derives the same ones, so replicas can check
        each other's MACs without sharing anything but the configuration; the keys under
        older ids still verify what a replica not yet rotated has signed.
        """
        return tuple(
            hmac.new(root, purpose, hashlib.sha256).digest() for root in self._derivation_roots.values()
        )

    def needs_rotation(self, token: bytes | str) -> bool:
        """Whether `token` is not sealed under the current key (re-encrypt it when read)."""
        try:
            kid, _, _ = _split(token)
        except DecryptionError:
            return True
        return kid != self._current

    def __repr__(self) -> str:
        return f"Keyring(kids={list(self._ciphers)!r})"


def _aad(kid: str, context: bytes) -> bytes:
    return f"{_VERSION}.{kid}.".encode() + context


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def _split(token: bytes | str) -> tuple[str, bytes, bytes]:
    raw = token.encode() if isinstance(token, str) else bytes(token)
    parts = raw.split(b".")
    if len(parts) != 4 or parts[0] != _VERSION.encode():
        raise DecryptionError("value is not a v1 keyring token")
    try:
        kid = parts[1].decode("ascii")
        nonce = _unb64(parts[2])
        sealed = _unb64(parts[3])
    except (UnicodeDecodeError, binascii.Error, ValueError):
        raise DecryptionError("value is not a well-formed keyring token") from None
    canonical = _b64(nonce) == parts[2] and _b64(sealed) == parts[3]
    if not canonical or len(kid) != 16 or any(c not in "0123456789abcdef" for c in kid):
        raise DecryptionError("value is not a well-formed keyring token")
    if len(nonce) != _NONCE_BYTES or len(sealed) < _TAG_BYTES:
        raise DecryptionError(f"value under key id {kid} is truncated", kid=kid)
    return kid, nonce, sealed


def _parse_secret(text: str, index: int) -> bytes:
    which = "encryptionKey" if index == 0 else f"previous key {index}"
    value = text.strip()
    if len(value) == 2 * _KEY_BYTES and all(c in "0123456789abcdefABCDEF" for c in value):
        return bytes.fromhex(value)
    if len(value.encode()) == _KEY_BYTES:
        return value.encode()
    if len(value) in (43, 44):
        try:
            decoded = base64.b64decode(
                value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True
            )
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) == _KEY_BYTES:
            return decoded
    raise ValueError(
        f"{which} must be 32 bytes: 64 hex characters, base64 of 32 bytes, or exactly 32 characters "
        f"(got {len(value)} characters); generate one with `openssl rand -hex 32`"
    )

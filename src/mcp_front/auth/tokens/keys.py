"""Signing keys for access tokens: `SigningKey` and the rotating set `SigningKeys`.

Keys are asymmetric (ES256 on P-256 by default; RS256 when an RSA key is loaded from PEM) so
the resource side, or anyone holding the JWKS, can verify without being able to sign. Each
key's `kid` is its RFC 7638 JWK thumbprint: stable, derived from the public key alone, and
the same wherever it is computed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["ALGORITHMS", "PrivateKey", "PublicKey", "SigningKey", "SigningKeys"]

# Every algorithm a token may be signed with; anything else (none, HS*, …) is refused.
ALGORITHMS = ("ES256", "RS256")
_MIN_RSA_BITS = 2048

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class SigningKey:
    """One private signing key, with its algorithm and thumbprint `kid`."""

    __slots__ = ("_private", "alg", "kid", "public_key")

    def __init__(self, private_key: PrivateKey) -> None:
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            if not isinstance(private_key.curve, ec.SECP256R1):
                raise ValueError(f"EC signing keys must be P-256 (got {private_key.curve.name})")
            self.alg = "ES256"
        elif isinstance(private_key, rsa.RSAPrivateKey):
            if private_key.key_size < _MIN_RSA_BITS:
                raise ValueError(f"RSA signing keys must have at least {_MIN_RSA_BITS} bits")
            self.alg = "RS256"
        else:
            raise ValueError("signing keys must be EC P-256 (ES256) or RSA (RS256)")
        self._private = private_key
        self.public_key: PublicKey = private_key.public_key()
        self.kid = _thumbprint(_public_members(self.public_key))

    @classmethod
    def generate(cls) -> SigningKey:
        """A new ES256 key."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: str) -> SigningKey:
        """Load an unencrypted PEM private key (PKCS8 or traditional)."""
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError):
            raise ValueError("not an unencrypted PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError("signing keys must be EC P-256 (ES256) or RSA (RS256)")
        return cls(key)

    def to_pem(self) -> str:
        """Unencrypted PKCS8 PEM: seal it with the `Keyring` before it is stored."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def private_key(self) -> PrivateKey:
        """The key object that signs (given to PyJWT)."""
        return self._private

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK with `kid`, `alg` and `use=sig`."""
        return {**_public_members(self.public_key), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SigningKey) and other.kid == self.kid

    def __hash__(self) -> int:
        return hash(self.kid)

    def __repr__(self) -> str:
        return f"SigningKey(alg={self.alg!r}, kid={self.kid!r})"


class SigningKeys:
    """The current signing key and the previous ones still accepted for verification."""

    __slots__ = ("_by_kid", "current", "previous")

    def __init__(self, current: SigningKey, previous: Sequence[SigningKey] = ()) -> None:
        self.current = current
        self.previous = tuple(key for key in dict.fromkeys(previous) if key != current)
        self._by_kid = {key.kid: key for key in (current, *self.previous)}

    def get(self, kid: str) -> SigningKey | None:
        """The key named `kid`, if it is current or previous."""
        return self._by_kid.get(kid)

    def rotate(self, new: SigningKey, *, keep: int | None = None) -> SigningKeys:
        """A set where `new` signs and the current key joins the previous ones.

        `keep` bounds how many previous keys remain (most recent first); leave at least one
        access-token lifetime between rotations that drop a key, or live tokens stop verifying.
        """
        previous = (self.current, *self.previous)
        return SigningKeys(new, previous if keep is None else previous[:keep])

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set to publish: public members only, current key first."""
        return {"keys": [key.public_jwk() for key in self]}

    def __iter__(self) -> Iterator[SigningKey]:
        return iter(self._by_kid.values())

    def __len__(self) -> int:
        return len(self._by_kid)

    def __repr__(self) -> str:
        return f"SigningKeys(current={self.current.kid!r}, previous={[k.kid for k in self.previous]!r})"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return _b64(value.to_bytes(size, "big"))


def _public_members(key: PublicKey) -> dict[str, str]:
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": _uint(numbers.x, 32), "y": _uint(numbers.y, 32)}
    rsa_numbers = key.public_numbers()
    return {"kty": "RSA", "n": _uint(rsa_numbers.n), "e": _uint(rsa_numbers.e)}


def _thumbprint(members: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without whitespace."""
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _b64(hashlib.sha256(canonical.encode()).digest())

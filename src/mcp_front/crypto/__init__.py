"""Cryptography of the gateway: hashing and comparing secrets, and encrypting them at rest."""

from mcp_front.crypto.hashing import digest, fingerprint, matches_any, random_token
from mcp_front.crypto.keyring import DecryptionError, Keyring, key_id

__all__ = ["DecryptionError", "Keyring", "digest", "fingerprint", "key_id", "matches_any", "random_token"]

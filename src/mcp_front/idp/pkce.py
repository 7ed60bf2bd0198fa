"""Per-login random values: state, nonce and the PKCE verifier with its S256 challenge."""

from __future__ import annotations

from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]

# 48 characters from a 62-letter alphabet: about 285 bits, and within RFC 7636's 43–128.
_TOKEN_LENGTH = 48


def new_token() -> str:
    """A fresh unguessable value for `state`, `nonce` or `code_verifier`."""
    token: str = generate_token(_TOKEN_LENGTH)
    return token


def s256_challenge(code_verifier: str) -> str:
    """The RFC 7636 S256 `code_challenge` for `code_verifier`."""
    challenge: str = create_s256_code_challenge(code_verifier)
    return challenge

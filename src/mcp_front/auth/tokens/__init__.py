"""Access tokens: asymmetric signing keys with rotation, and RFC 9068 JWTs signed with them."""

from mcp_front.auth.tokens.access import (
    TOKEN_TYPE,
    AccessTokenClaims,
    ExpiredToken,
    InvalidToken,
    InvalidTokenReason,
    IssuedToken,
    TokenIssuer,
)
from mcp_front.auth.tokens.keys import ALGORITHMS, SigningKey, SigningKeys

__all__ = [
    "ALGORITHMS",
    "TOKEN_TYPE",
    "AccessTokenClaims",
    "ExpiredToken",
    "InvalidToken",
    "InvalidTokenReason",
    "IssuedToken",
    "SigningKey",
    "SigningKeys",
    "TokenIssuer",
]

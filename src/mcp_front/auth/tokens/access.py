"""`TokenIssuer`: JWT access tokens in the RFC 9068 profile (`typ: at+jwt`).

Verification is local: the public keys are decoded once per `kid`, the header is checked
before any cryptography (type, an explicit list of asymmetric algorithms, known key), and
time is read from the issuer's clock so that tests and replicas agree on it. Every refusal is
an `InvalidToken` whose `reason` names the check that failed.
"""

from __future__ import annotations

import enum
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import jwt

from mcp_front.auth.tokens.keys import ALGORITHMS, PublicKey, SigningKeys
from mcp_front.errors import MCPFrontError

__all__ = [
    "TOKEN_TYPE",
    "AccessTokenClaims",
    "ExpiredToken",
    "InvalidToken",
    "InvalidTokenReason",
    "IssuedToken",
    "TokenIssuer",
]

TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
_ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_RESERVED = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "email"})


class InvalidTokenReason(enum.StrEnum):
    """Which check refused a token (for logs and metrics; clients only see `invalid_token`)."""

    MALFORMED = "malformed"
    WRONG_TYPE = "wrong_type"
    UNSUPPORTED_ALG = "unsupported_alg"
    UNKNOWN_KID = "unknown_kid"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"


class InvalidToken(MCPFrontError):
    """An access token was refused. The message names the check, never the token."""

    def __init__(self, reason: InvalidTokenReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class ExpiredToken(InvalidToken):
    """The token is past `exp` (plus leeway): the client should refresh, not re-authorize."""

    def __init__(self, detail: str) -> None:
        super().__init__(InvalidTokenReason.EXPIRED, detail)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly signed access token and what the `/token` response and audit log need."""

    token: str = field(repr=False)
    jti: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    """The verified claims of an access token."""

    issuer: str
    subject: str
    audience: str
    client_id: str
    scope: tuple[str, ...]
    email: str | None
    jti: str
    issued_at: int
    expires_at: int
    not_before: int | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


class TokenIssuer:
    """Signs access tokens with the current key and verifies them against every known key."""

    def __init__(
        self,
        keys: SigningKeys,
        issuer: str,
        *,
        access_token_ttl: timedelta = timedelta(hours=1),
        leeway: timedelta = timedelta(seconds=30),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if access_token_ttl <= timedelta(0):
            raise ValueError("access_token_ttl must be positive")
        self.issuer = issuer
        self.access_token_ttl = access_token_ttl
        self._leeway = int(leeway.total_seconds())
        self._clock = clock
        self._keys = keys
        self._public: dict[str, tuple[str, PublicKey]] = {}
        self.keys = keys

    @property
    def keys(self) -> SigningKeys:
        """The signing keys; assign a rotated set to start signing with its current key."""
        return self._keys

    @keys.setter
    def keys(self, keys: SigningKeys) -> None:
        self._keys = keys
        self._public = {key.kid: (key.alg, key.public_key) for key in keys}

    def issue_access_token(
        self,
        *,
        subject: str,
        audience: str,
        client_id: str,
        scope: Sequence[str],
        email: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> IssuedToken:
        """Sign an access token for one resource (`audience`)."""
        if isinstance(scope, str):
            raise TypeError("scope is a sequence of scope tokens, not a string")
        for token in scope:
            if not token or any(c.isspace() for c in token):
                raise ValueError(f"invalid scope token {token!r}")
        clash = _RESERVED.intersection(extra or {})
        if clash:
            raise ValueError(f"extra claims may not override {sorted(clash)}")
        now = int(self._clock())
        jti = secrets.token_urlsafe(16)
        expires_at = now + int(self.access_token_ttl.total_seconds())
        claims: dict[str, Any] = {
            **(extra or {}),
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "exp": expires_at,
            "iat": now,
            "nbf": now,
            "jti": jti,
            "client_id": client_id,
            "scope": " ".join(scope),
        }
        if email is not None:
            claims["email"] = email
        key = self._keys.current
        token = jwt.encode(
            claims, key.private_key, algorithm=key.alg, headers={"typ": TOKEN_TYPE, "kid": key.kid}
        )
        return IssuedToken(token=token, jti=jti, expires_at=expires_at)

    def verify_access_token(self, token: str, *, audience: str | Callable[[str], bool]) -> AccessTokenClaims:
        """Verify `token` and return its claims, or raise `InvalidToken`.

        `audience` is either the exact resource expected, or a predicate such as
        ``lambda aud: AudienceValidator.covers(aud, request_url)``. The token's `aud` must be
        a single resource (a string or a one-element list) that satisfies it.
        """
        alg, public_key = self._check_header(token)
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=[alg],
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise InvalidToken(InvalidTokenReason.BAD_SIGNATURE, "signature does not verify") from None
        except jwt.PyJWTError:
            raise InvalidToken(InvalidTokenReason.MALFORMED, "token cannot be decoded") from None
        return self._check_claims(claims, audience)

    def signed_here(self, token: str) -> bool:
        """Whether `token` claims to be one of this issuer's access tokens (its header names
        an access-token type, an allowed algorithm and one of the keys), signature unchecked:
        cheap, to tell an expired token of ours from a guessed credential."""
        try:
            self._check_header(token)
        except InvalidToken:
            return False
        return True

    def _check_header(self, token: str) -> tuple[str, PublicKey]:
        if not isinstance(token, str) or token.count(".") != 2:
            raise InvalidToken(InvalidTokenReason.MALFORMED, "not a compact JWS")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, json.JSONDecodeError, ValueError):
            raise InvalidToken(InvalidTokenReason.MALFORMED, "header cannot be decoded") from None
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES:
            raise InvalidToken(InvalidTokenReason.WRONG_TYPE, f"typ must be {TOKEN_TYPE}")
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidToken(InvalidTokenReason.UNSUPPORTED_ALG, f"alg must be one of {list(ALGORITHMS)}")
        if "crit" in header:
            raise InvalidToken(InvalidTokenReason.MALFORMED, "critical header parameters are not supported")
        kid = header.get("kid")
        known = self._public.get(kid) if isinstance(kid, str) else None
        if known is None:
            raise InvalidToken(InvalidTokenReason.UNKNOWN_KID, "kid names no current or previous key")
        if known[0] != alg:
            raise InvalidToken(InvalidTokenReason.UNSUPPORTED_ALG, "alg does not match the key's algorithm")
        return known

    def _check_claims(
        self, claims: dict[str, Any], audience: str | Callable[[str], bool]
    ) -> AccessTokenClaims:
        def required(name: str, kind: type | tuple[type, ...]) -> Any:
            value = claims.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise InvalidToken(InvalidTokenReason.MALFORMED, f"claim {name!r} is missing or mistyped")
            return value

        issuer = required("iss", str)
        subject = required("sub", str)
        client_id = required("client_id", str)
        jti = required("jti", str)
        issued_at = required("iat", (int, float))
        expires_at = required("exp", (int, float))
        not_before = claims.get("nbf")
        if not_before is not None:
            not_before = required("nbf", (int, float))
        scope = claims.get("scope", "")
        email = claims.get("email")
        if not isinstance(scope, str) or (email is not None and not isinstance(email, str)):
            raise InvalidToken(InvalidTokenReason.MALFORMED, "claim 'scope' or 'email' is mistyped")
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) == 1:
            aud = aud[0]
        if not isinstance(aud, str):
            raise InvalidToken(InvalidTokenReason.WRONG_AUDIENCE, "aud must be exactly one resource")

        if issuer != self.issuer:
            raise InvalidToken(InvalidTokenReason.WRONG_ISSUER, "iss is not this gateway")
        now = self._clock()
        if now >= expires_at + self._leeway:
            raise ExpiredToken("token has expired")
        if (not_before is not None and now < not_before - self._leeway) or now < issued_at - self._leeway:
            raise InvalidToken(InvalidTokenReason.NOT_YET_VALID, "token is not valid yet")
        accepted = audience(aud) if callable(audience) else aud == audience
        if not accepted:
            raise InvalidToken(InvalidTokenReason.WRONG_AUDIENCE, "token is for another resource")

        extra = {k: v for k, v in claims.items() if k not in _RESERVED}
        return AccessTokenClaims(
            issuer=issuer,
            subject=subject,
            audience=aud,
            client_id=client_id,
            scope=tuple(scope.split()),
            email=email,
            jti=jti,
            issued_at=int(issued_at),
            expires_at=int(expires_at),
            not_before=None if not_before is None else int(not_before),
            extra=MappingProxyType(extra),
        )

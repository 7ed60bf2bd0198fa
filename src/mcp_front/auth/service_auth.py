"""Static service credentials (`serviceAuths`): bearer tokens and basic passwords.

Each credential stands for a principal, named by its `user` key or derived from its
place in the config, so isolation and limits apply per caller as they do for users. A
presented credential is checked by its keyed fingerprint (`crypto.fingerprint`), one HMAC
whatever it is, and the principal it yields carries that fingerprint, so that another
service (an aggregate's member) can tell whether its own credentials would have let the
same caller in.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import replace

from mcp_front import crypto
from mcp_front.auth.principal import Principal
from mcp_front.config import BasicServiceAuth, BearerServiceAuth, ServiceAuth

__all__ = ["StaticCredentials", "basic_secret", "bearer_secret"]


def bearer_secret(token: str) -> str:
    """What is fingerprinted of a bearer token."""
    return f"bearer\0{token}"


def basic_secret(username: str, password: str) -> str:
    """What is fingerprinted of a user name and password."""
    return f"basic\0{username}\0{password}"


class StaticCredentials:
    """Checks an `Authorization` header against one service's configured credentials."""

    def __init__(
        self, service: str, auths: Sequence[ServiceAuth], *, fingerprint_key: bytes | None = None
    ) -> None:
        """`fingerprint_key`: the key of `crypto.fingerprint`, shared by replicas."""
        self.service = service
        self._fingerprint_key = fingerprint_key
        self._fingerprints: list[bytes] = []
        self._principals: list[Principal] = []
        schemes: dict[str, None] = {}
        for index, auth in enumerate(auths):
            principal = _principal_for(service, index, auth)
            if isinstance(auth, BearerServiceAuth):
                schemes["Bearer"] = None
                secrets = [bearer_secret(token.get_secret_value()) for token in auth.tokens]
            else:
                schemes["Basic"] = None
                secrets = [basic_secret(auth.username, auth.password.get_secret_value())]
            for secret in secrets:
                fingerprint = crypto.fingerprint(secret, fingerprint_key)
                self._fingerprints.append(fingerprint)
                self._principals.append(replace(principal, credential=fingerprint))
        self.schemes: tuple[str, ...] = tuple(sorted(schemes, key=["Bearer", "Basic"].index))

    def admits(self, principal: Principal) -> bool:
        """Whether one of these credentials would let `principal` in: it presented one of
        them, or it is one of their principals (an aggregate asks before it opens this
        service for a caller it authenticated itself)."""
        credential = principal.credential
        if credential is not None and crypto.matches_any(credential, self._fingerprints) is not None:
            return True
        return any(candidate.key == principal.key for candidate in self._principals)

    def authenticate(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        scheme = scheme.lower()
        if scheme == "bearer" and "Bearer" in self.schemes:
            return self._match(bearer_secret(credential))
        if scheme == "basic" and "Basic" in self.schemes:
            decoded = _basic(credential)
            return None if decoded is None else self._match(basic_secret(*decoded))
        return None

    def _match(self, secret: str) -> Principal | None:
        index = crypto.matches_any(crypto.fingerprint(secret, self._fingerprint_key), self._fingerprints)
        return None if index is None else self._principals[index]


def _basic(credential: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(credential, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, password = decoded.partition(":")
    return (username, password) if separator else None


def _principal_for(service: str, index: int, auth: ServiceAuth) -> Principal:
    if auth.user:
        subject = auth.user
    elif isinstance(auth, BasicServiceAuth):
        subject = f"{service}:basic:{auth.username}"
    else:
        subject = f"{service}:serviceAuths[{index}]"
    email = auth.user if auth.user and "@" in auth.user else None
    return Principal(subject=subject, kind="service", email=email)

"""Static service credentials (`serviceAuths`): bearer tokens and basic passwords.

Each credential stands for a principal, named by its `user` key or derived from its
place in the config, so isolation and limits apply per caller as they do for users.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from mcp_front import crypto
from mcp_front.auth.principal import Principal
from mcp_front.config import BasicServiceAuth, BearerServiceAuth, ServiceAuth

_VERIFIED_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class _BasicCredential:
    username_digest: bytes
    password: crypto.PasswordHash
    principal: Principal


class StaticCredentials:
    """Checks an `Authorization` header against one service's configured credentials."""

    def __init__(self, service: str, auths: Sequence[ServiceAuth]) -> None:
        self.service = service
        self._bearer_digests: list[bytes] = []
        self._bearer_principals: list[Principal] = []
        self._basic: list[_BasicCredential] = []
        for index, auth in enumerate(auths):
            principal = _principal_for(service, index, auth)
            if isinstance(auth, BearerServiceAuth):
                for token in auth.tokens:
                    self._bearer_digests.append(crypto.digest(token.get_secret_value()))
                    self._bearer_principals.append(principal)
            else:
                self._basic.append(
                    _BasicCredential(
                        crypto.digest(auth.username),
                        crypto.PasswordHash.of(auth.password.get_secret_value()),
                        principal,
                    )
                )
        # Password hashing is slow on purpose; remember headers already verified, keyed by a
        # keyed hash so the cache holds nothing an attacker could replay offline.
        self._cache_key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, Principal] = OrderedDict()

    def admits(self, principal: Principal) -> bool:
        """Whether `principal` is one of these credentials' principals (an aggregate asks
        before it opens this service for a caller it authenticated itself)."""
        own = [*self._bearer_principals, *(credential.principal for credential in self._basic)]
        return any(candidate.key == principal.key for candidate in own)

    @property
    def schemes(self) -> tuple[str, ...]:
        return (("Bearer",) if self._bearer_digests else ()) + (("Basic",) if self._basic else ())

    def authenticate(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        scheme = scheme.lower()
        if scheme == "bearer" and self._bearer_digests:
            index = crypto.matches_any(crypto.digest(credential), self._bearer_digests)
            return None if index is None else self._bearer_principals[index]
        if scheme == "basic" and self._basic:
            return self._authenticate_basic(credential)
        return None

    def _authenticate_basic(self, credential: str) -> Principal | None:
        cache_key = hmac.digest(self._cache_key, credential.encode(), "sha256")
        cached = self._verified.get(cache_key)
        if cached is not None:
            self._verified.move_to_end(cache_key)
            return cached
        try:
            decoded = base64.b64decode(credential, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, separator, password = decoded.partition(":")
        if not separator:
            return None
        wanted = crypto.digest(username)
        match: _BasicCredential | None = None
        for entry in self._basic:
            if hmac.compare_digest(wanted, entry.username_digest) and match is None:
                match = entry
        # Verify against some hash even for unknown users, so timing does not reveal names.
        entry = match or self._basic[0]
        if not entry.password.verify(password) or match is None:
            return None
        self._verified[cache_key] = match.principal
        if len(self._verified) > _VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return match.principal


def _principal_for(service: str, index: int, auth: ServiceAuth) -> Principal:
    if auth.user:
        subject = auth.user
    elif isinstance(auth, BasicServiceAuth):
        subject = f"{service}:basic:{auth.username}"
    else:
        subject = f"{service}:serviceAuths[{index}]"
    email = auth.user if auth.user and "@" in auth.user else None
    return Principal(subject=subject, kind="service", email=email)

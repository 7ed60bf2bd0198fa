"""The contract between the gateway and the organisation's identity provider.

The authorization server sends a user to `IdentityProvider.authorization_url()`, receives
them back on its callback with a `code`, and calls `IdentityProvider.complete()` to learn
who they are. Everything the gateway later decides about the user (may they sign in, which
services, which tools) is decided from the `Identity` returned, never from provider tokens,
which stay inside the provider adapter.

To plug in a provider the gateway does not ship, subclass `IdentityProvider` and write
its `name`, `authorization_url` and `complete`; it inherits `discover` and `aclose`,
which do nothing until overridden. (A class that does not subclass it must define all
five members.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

from mcp_front.errors import MCPFrontError

ErrorKind = Literal[
    "exchange_failed",
    "invalid_id_token",
    "provider_error",
    "network",
    "not_configured",
    "hosted_domain_mismatch",
]


class IdentityProviderError(MCPFrontError):
    """Signing in with the identity provider failed.

    `kind` is for code (which page to show, what to count); `message` is for people: it
    says what went wrong in words and never carries a secret, code or token.
    """

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"IdentityProviderError({self.kind!r}, {self.message!r})"


def _frozen_claims(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(claims))


@dataclass(frozen=True, slots=True)
class Identity:
    """A user as the identity provider vouched for them.

    `subject` is the provider's stable identifier for the user, not the email: emails are
    reassigned, subjects are not. `orgs` holds GitHub organisations (`"acme"`) and teams
    (`"acme/platform"`); `groups` holds OIDC group claims. `claims` keeps everything the
    provider said, read-only, for policies that need more.
    """

    subject: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    orgs: frozenset[str] = field(default_factory=frozenset)
    hosted_domain: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.claims, MappingProxyType):
            object.__setattr__(self, "claims", _frozen_claims(self.claims))


@runtime_checkable
class IdentityProvider(Protocol):
    """Where users sign in: build the authorization URL, then turn the returned code into an `Identity`.

    The caller owns the per-login values: `state` (ties the callback to the browser),
    `nonce` (ties the ID token to the login) and `code_verifier` (PKCE, RFC 7636). It keeps
    them between the two calls and passes the same ones back to `complete()`. Providers
    without ID tokens ignore `nonce`; providers without PKCE ignore `code_verifier`.

    The caller also handles a callback that carries `error` instead of `code` (the user
    refused, or the provider failed): `complete()` is only called with a code.
    """

    name: str
    """A short label for pages and logs, e.g. "google"."""

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        """The URL to send the user's browser to."""
        ...

    async def complete(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
        """Exchange `code` and return the user; raise `IdentityProviderError` when that fails."""
        ...

    async def discover(self) -> object:
        """Learn whatever sign-in needs before the first user arrives (an OIDC provider's
        endpoints); the gateway calls it at start, so a misconfigured provider fails the
        start, not a user's first login. Does nothing by default."""
        return None

    async def aclose(self) -> None:
        """Release what the provider holds (its HTTP client); the gateway calls it on exit
        for a provider it built itself. Does nothing by default."""
        return None

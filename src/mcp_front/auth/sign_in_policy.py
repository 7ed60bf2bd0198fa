"""`SignInPolicy`: who may sign in to the gateway.

The rules combine as in most single sign-on proxies, so they read the way people
expect: an email address passes if its domain is allowed *or* it is listed by name
(a guest outside the domain); then every organisation or group restriction that is
configured must also hold. A verified email is required unless switched off, since an
identity provider that lets users type any address would otherwise let them pick one
in your domain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol


class SignInIdentity(Protocol):
    """What the policy reads of an identity the identity provider vouched for."""

    @property
    def email(self) -> str | None: ...

    @property
    def email_verified(self) -> bool: ...

    @property
    def groups(self) -> frozenset[str]: ...

    @property
    def orgs(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class SignInDecision:
    allowed: bool
    reason: str
    """Why, in words the person signing in can act on."""


def _lowered(values: Iterable[str]) -> frozenset[str]:
    return frozenset(value.strip().lower() for value in values)


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    allowed_domains: frozenset[str] = field(default_factory=frozenset)
    allowed_emails: frozenset[str] = field(default_factory=frozenset)
    allowed_orgs: frozenset[str] = field(default_factory=frozenset)
    """GitHub organisations (`acme`) or teams (`acme/platform`)."""
    allowed_groups: frozenset[str] = field(default_factory=frozenset)
    require_verified_email: bool = True

    @classmethod
    def of(
        cls,
        *,
        allowed_domains: Iterable[str] = (),
        allowed_emails: Iterable[str] = (),
        allowed_orgs: Iterable[str] = (),
        allowed_groups: Iterable[str] = (),
        require_verified_email: bool = True,
    ) -> SignInPolicy:
        """A policy with names compared case-insensitively (groups keep their case:
        some providers' group ids are case-sensitive)."""
        return cls(
            allowed_domains=_lowered(allowed_domains),
            allowed_emails=_lowered(allowed_emails),
            allowed_orgs=_lowered(allowed_orgs),
            allowed_groups=frozenset(allowed_groups),
            require_verified_email=require_verified_email,
        )

    def check_sign_in(self, identity: SignInIdentity) -> SignInDecision:
        email = (identity.email or "").strip().lower()
        if self.allowed_domains or self.allowed_emails or self.require_verified_email:
            if not email:
                return SignInDecision(False, "Your identity provider did not share an email address.")
            if self.require_verified_email and not identity.email_verified:
                return SignInDecision(
                    False, f"The email address {email} is not verified at your identity provider."
                )
        if self.allowed_domains or self.allowed_emails:
            local, at, domain = email.rpartition("@")
            # Without a local part there is no address, whatever the provider calls it.
            domain = domain if at and local else ""
            if domain not in self.allowed_domains and email not in self.allowed_emails:
                return SignInDecision(False, f"{email} is not a member of this organisation.")
        if self.allowed_orgs and not _lowered(identity.orgs) & self.allowed_orgs:
            return SignInDecision(
                False, f"{email or 'This account'} is not in any of the allowed organisations or teams."
            )
        if self.allowed_groups and not identity.groups & self.allowed_groups:
            return SignInDecision(False, f"{email or 'This account'} is not in any of the allowed groups.")
        return SignInDecision(True, "allowed")

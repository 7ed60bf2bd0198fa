"""`Credential`: one user's credential for one service, as the vault keeps it.

The whole record, secrets and state alike, is sealed as one value: nothing about a user's
connection (not even whether it works) can be read or changed without the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from mcp_front.storage.records import JSONRecord

__all__ = ["Credential", "CredentialKind", "CredentialState"]

CredentialKind = Literal["manual", "oauth"]
"""How the user gave it: pasted on the token page, or through an OAuth connection."""

CredentialState = Literal["connected", "expired", "error"]
"""`expired`: the provider refused it for good (reconnect); `error`: it could not be checked
or refreshed lately, and is kept."""


@dataclass(frozen=True, slots=True)
class Credential(JSONRecord):
    """The user's token for `service`, with what it takes to keep it working.

    `access_token` and `refresh_token` never appear in `repr`; `problem` is a sentence for
    the user (it never quotes a provider's answer verbatim, which may echo a secret).
    """

    service: str
    kind: CredentialKind
    access_token: str = field(repr=False)
    updated_at: float
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    scope: str | None = None
    state: CredentialState = "connected"
    problem: str | None = None

    def expires_within(self, seconds: float, now: float) -> bool:
        """Whether the access token has at most `seconds` left (never, without an expiry)."""
        return self.expires_at is not None and self.expires_at - now <= seconds

    def marked(self, state: CredentialState, problem: str | None, now: float) -> Credential:
        return replace(self, state=state, problem=problem, updated_at=now)

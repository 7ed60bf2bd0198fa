"""`Credential`: one user's credential for one service, as the vault keeps it.

The whole record, secrets and state alike, is sealed as one value: nothing about a user's
connection (not even whether it works) can be read or changed without the key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

__all__ = ["Credential", "CredentialKind", "CredentialState"]

CredentialKind = Literal["manual", "oauth"]
"""How the user gave it: pasted on the token page, or through an OAuth connection."""

CredentialState = Literal["connected", "expired", "error"]
"""`expired`: the provider refused it for good (reconnect); `error`: it could not be checked
or refreshed lately, and is kept."""


@dataclass(frozen=True, slots=True)
class Credential:
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

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Credential:
        data: dict[str, Any] = json.loads(raw)
        return cls(**data)

    def expires_within(self, seconds: float, now: float) -> bool:
        """Whether the access token has at most `seconds` left (never, without an expiry)."""
        return self.expires_at is not None and self.expires_at - now <= seconds

    def marked(self, state: CredentialState, problem: str | None, now: float) -> Credential:
        return replace(self, state=state, problem=problem, updated_at=now)

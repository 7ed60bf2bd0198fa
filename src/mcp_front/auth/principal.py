"""The authenticated caller of a service, decided once per request by the resource guard."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PrincipalKind = Literal["user", "service", "anonymous"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a signed-in user, a static service credential, or nobody.

    `subject` is the stable key for isolation and limits: sessions, processes and
    credentials belong to a subject, never to a token.
    """

    subject: str
    kind: PrincipalKind = "user"
    email: str | None = None
    client_id: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    credential: bytes | None = field(default=None, repr=False)
    """For a static credential, the keyed fingerprint of the one presented
    (`crypto.fingerprint`): it lets another service check it against its own. Part of
    equality: two tokens of one `serviceAuths` entry are one identity, but not one caller
    to a service in front of others, whose guards may take only one of them."""

    @property
    def key(self) -> str:
        """What isolation and limits are keyed by: the subject within its kind, so that a
        static credential's name can never stand for a signed-in user with that id."""
        return f"{self.kind}:{self.subject}"

    @property
    def display_name(self) -> str:
        """What logs show for this caller: the email when there is one."""
        return self.email or self.subject


ANONYMOUS = Principal(subject="anonymous", kind="anonymous")

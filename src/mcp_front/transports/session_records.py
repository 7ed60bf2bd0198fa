"""`SessionRecords`: what another replica needs to take a streamable-HTTP session over.

A record is written once, when the client's `initialize` succeeds: the service, who
opened the session, the protocol version and the `initialize` params to replay, and which
replica owns it. It is sealed by the keyring (bound to the session id), so the store
holds nothing readable and nothing that could be moved to another session. Its expiry
is renewed rarely, by its owner, and the owner changes only by compare-and-set, so of
two replicas taking one session over only one wins.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any

from mcp_front.auth.principal import Principal
from mcp_front.crypto.keyring import DecryptionError, Keyring
from mcp_front.storage.base import Store

NAMESPACE = "front-sessions"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    service: str
    principal_key: str
    credential: str | None
    """The hex fingerprint of the static credential the session was opened with, if any."""
    protocol_version: str | None
    initialize_params: dict[str, Any]
    owner: str
    """The id of the replica serving the session."""

    @classmethod
    def of(
        cls,
        service: str,
        principal: Principal,
        protocol_version: str | None,
        initialize_params: dict[str, Any],
        owner: str,
    ) -> SessionRecord:
        credential = principal.credential.hex() if principal.credential is not None else None
        return cls(service, principal.key, credential, protocol_version, initialize_params, owner)

    def belongs_to(self, service: str, principal: Principal) -> bool:
        """Whether `principal` opened this session of `service`, as `FrontSession.owned_by` says."""
        credential = principal.credential.hex() if principal.credential is not None else None
        return (
            self.service == service and self.principal_key == principal.key and self.credential == credential
        )

    def moved_to(self, owner: str) -> SessionRecord:
        return replace(self, owner=owner)


class SessionRecords:
    """Sealed session records in the store, each kept `ttl` past its last renewal."""

    def __init__(self, store: Store, keyring: Keyring, ttl: timedelta) -> None:
        self._store = store
        self._keyring = keyring
        self.ttl = ttl

    async def write(self, session_id: str, record: SessionRecord) -> bytes:
        """Store a new record; what was stored, to renew or move it later."""
        stored = self._seal(session_id, record)
        await self._store.put(NAMESPACE, session_id, stored, ttl=self.ttl)
        return stored

    async def read(self, session_id: str) -> tuple[SessionRecord, bytes] | None:
        """The record and its stored form, or `None` when there is none that opens."""
        stored = await self._store.get(NAMESPACE, session_id)
        if stored is None:
            return None
        try:
            fields = json.loads(self._keyring.decrypt(stored, context=_context(session_id)))
            return SessionRecord(**fields), stored
        except (DecryptionError, ValueError, TypeError):
            return None

    async def claim(self, session_id: str, stored: bytes, record: SessionRecord, owner: str) -> bytes | None:
        """Make `owner` the session's owner if the record is still `stored`; what is
        stored now, or `None` when another replica changed it first."""
        claimed = self._seal(session_id, record.moved_to(owner))
        won = await self._store.compare_and_set(NAMESPACE, session_id, stored, claimed, ttl=self.ttl)
        return claimed if won else None

    async def renew(self, session_id: str, stored: bytes) -> bool:
        """Push the record's expiry back; false when it changed hands (or expired)."""
        return await self._store.compare_and_set(NAMESPACE, session_id, stored, stored, ttl=self.ttl)

    async def forget(self, session_id: str, stored: bytes) -> None:
        """Remove the record, unless another replica has taken the session over since."""
        await self._store.compare_and_set(NAMESPACE, session_id, stored, None)

    def _seal(self, session_id: str, record: SessionRecord) -> bytes:
        plain = json.dumps(asdict(record), separators=(",", ":")).encode()
        return self._keyring.encrypt(plain, context=_context(session_id))


def _context(session_id: str) -> bytes:
    return b"front-session:" + session_id.encode()

"""`StoredClients`: the `RegisteredClients` of dynamically registered clients, kept in a `Store`.

Two namespaces hold them:

- `oauth_clients`, key `client_id`: a JSON record with the client information (never its
  secret), the SHA-256 digests of its current secrets, whether it was ever used, and the
  fingerprint of its registration;
- `oauth_client_registrations`, key the fingerprint: the `client_id` of the public client
  registered with that metadata, so an identical registration finds the same client again.

Only public clients are found again: Claude registers anew on every connect, and handing
it the same `client_id` keeps one client per application instead of thousands. A
confidential client never is: its secret was shown once, and whoever sends the same
metadata again (a name and redirect URIs are no secret) gets a new client of their own,
never a secret for an existing one.

A client that is never used (`touch`) disappears after `unused_client_ttl` (a day: a
client signs its user in within minutes of registering), so registrations that lead
nowhere do not pile up; the first use removes that expiry from both entries.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Protocol

from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata

from mcp_front.crypto import digest, matches_any, random_token
from mcp_front.errors import MCPFrontError
from mcp_front.storage import Clock, Store

__all__ = [
    "CLIENTS_NAMESPACE",
    "REGISTRATIONS_NAMESPACE",
    "MetadataDocuments",
    "NewClientAdmission",
    "RegistrationResult",
    "StoredClients",
    "TooManyClients",
]

CLIENTS_NAMESPACE: Final = "oauth_clients"
REGISTRATIONS_NAMESPACE: Final = "oauth_client_registrations"
CONFIDENTIAL_METHODS: Final = frozenset({"client_secret_post", "client_secret_basic"})

_CAS_ATTEMPTS: Final = 8

NewClientAdmission = Callable[[], Awaitable[float]]
"""Asked before a client is created: 0 to go ahead, else the seconds to wait."""


class TooManyClients(MCPFrontError):
    """A new client was not admitted; `retry_after` says when one may be."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"no new client for {retry_after:.0f} seconds")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class RegistrationResult:
    """The outcome of `StoredClients.register`.

    `client_secret` is the secret just issued to a new confidential client, in clear for
    this one response; it is stored only as a digest. `reused` tells an identical earlier
    registration of a public client was found and its client returned.
    """

    client: OAuthClientInformationFull
    client_secret: str | None
    reused: bool

    def __repr__(self) -> str:
        secret = None if self.client_secret is None else "<hidden>"
        return (
            f"RegistrationResult(client_id={self.client.client_id!r}, secret={secret}, reused={self.reused})"
        )


def fingerprint(metadata: OAuthClientMetadata) -> str:
    """A digest of what makes two registrations the same client.

    Redirect URIs, grant types, response types and contacts compare as sets, scope as a
    set of tokens; every other member kept exactly, so whoever registers first cannot
    decide what a later, different registration's client says about itself.
    """
    kept = metadata.model_dump(mode="json", exclude_none=True)
    normalised = {
        **kept,
        "redirect_uris": sorted({str(uri) for uri in metadata.redirect_uris or []}),
        "grant_types": sorted(set(metadata.grant_types)),
        "response_types": sorted(set(metadata.response_types)),
        "token_endpoint_auth_method": metadata.token_endpoint_auth_method or "client_secret_basic",
        "scope": sorted(set((metadata.scope or "").split())),
        "contacts": sorted(set(metadata.contacts or [])),
    }
    encoded = json.dumps(normalised, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def _plausible_id(client_id: str) -> bool:
    """Whether `client_id` could be one of ours, so that junk never reaches the store."""
    return 0 < len(client_id) <= 256 and client_id.isprintable()


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


class MetadataDocuments(Protocol):
    """Clients identified by the URL of their metadata document (`client_metadata`)."""

    async def get(self, client_id: str, *, requester: str | None = None) -> OAuthClientInformationFull | None:
        """The client the document at `client_id` describes, or `None`."""
        ...


class StoredClients:
    """Registers, finds and authenticates OAuth clients, persisting them through a `Store`.

    `get` of an `https://` client id is answered by `metadata_documents` when given (Client
    ID Metadata Documents); otherwise by the registered clients.
    """

    def __init__(
        self,
        store: Store,
        *,
        unused_client_ttl: timedelta = timedelta(days=1),
        clock: Clock = time.time,
        metadata_documents: MetadataDocuments | None = None,
    ) -> None:
        if unused_client_ttl.total_seconds() <= 0:
            raise ValueError("unused_client_ttl must be positive")
        self._store = store
        self._ttl = unused_client_ttl
        self._clock = clock
        self._documents = metadata_documents

    async def _record(self, client_id: str) -> dict[str, Any] | None:
        if not _plausible_id(client_id):
            return None
        raw = await self._store.get(CLIENTS_NAMESPACE, client_id)
        if raw is None:
            return None
        record: dict[str, Any] = json.loads(raw)
        return record

    async def get(self, client_id: str, *, requester: str | None = None) -> OAuthClientInformationFull | None:
        if client_id.startswith("https://"):
            if self._documents is None:
                return None
            return await self._documents.get(client_id, requester=requester)
        record = await self._record(client_id)
        return None if record is None else OAuthClientInformationFull.model_validate(record["client"])

    async def authenticate(
        self, client_id: str, client_secret: str | None
    ) -> OAuthClientInformationFull | None:
        if client_id.startswith("https://"):
            client = await self.get(client_id)
            return client if client is not None and client_secret is None else None
        record = await self._record(client_id)
        if record is None:
            return None
        client = OAuthClientInformationFull.model_validate(record["client"])
        digests = [bytes.fromhex(value) for value in record.get("secrets", [])]
        if client.token_endpoint_auth_method not in CONFIDENTIAL_METHODS:
            return client if client_secret is None else None
        if client_secret is None or not digests:
            return None
        return client if matches_any(digest(client_secret), digests) is not None else None

    async def register(
        self, metadata: OAuthClientMetadata, *, admit: NewClientAdmission | None = None
    ) -> RegistrationResult:
        """Register `metadata` (already validated); for a public client, or find the client an
        identical registration made.

        A confidential client is always new, with a fresh secret. A reused public client that
        was never used starts a new `unused_client_ttl`. `admit` is asked before a client is
        created (never before one is found again); `TooManyClients` if it says no.
        """
        method = metadata.token_endpoint_auth_method or "client_secret_basic"
        if method in CONFIDENTIAL_METHODS:
            return await self._create(metadata, method, fingerprint=None, admit=admit)
        key = fingerprint(metadata)
        for _ in range(_CAS_ATTEMPTS):
            existing = await self._store.get(REGISTRATIONS_NAMESPACE, key)
            if existing is not None:
                result = await self._reuse(existing.decode(), key)
                if result is not None:
                    return result
                await self._store.compare_and_set(REGISTRATIONS_NAMESPACE, key, existing, None)
                continue
            created = await self._create(metadata, method, fingerprint=key, admit=admit)
            if await self._store.add(
                REGISTRATIONS_NAMESPACE, key, created.client.client_id.encode(), ttl=self._ttl
            ):
                return created
            # Lost a race to an identical registration: reuse the winner.
            await self._store.delete(CLIENTS_NAMESPACE, created.client.client_id)
        raise RuntimeError("client registration did not settle under concurrent updates")

    async def _create(
        self,
        metadata: OAuthClientMetadata,
        method: str,
        *,
        fingerprint: str | None,
        admit: NewClientAdmission | None,
    ) -> RegistrationResult:
        if admit is not None:
            wait = await admit()
            if wait > 0:
                raise TooManyClients(wait)
        secret = random_token(32) if method in CONFIDENTIAL_METHODS else None
        for _ in range(_CAS_ATTEMPTS):
            client = OAuthClientInformationFull.model_validate(
                {
                    **metadata.model_dump(mode="json", exclude_none=True),
                    "token_endpoint_auth_method": method,
                    "client_id": random_token(24),
                    "client_id_issued_at": int(self._clock()),
                }
            )
            record = {
                "client": client.model_dump(mode="json", exclude_none=True),
                "secrets": [] if secret is None else [digest(secret).hex()],
                "used": False,
                "fingerprint": fingerprint,
            }
            # A client-id collision is practically impossible, but never overwrite.
            if await self._store.add(CLIENTS_NAMESPACE, client.client_id, _encode(record), ttl=self._ttl):
                return RegistrationResult(client, secret, reused=False)
        raise RuntimeError("client registration found no free client id")

    async def _reuse(self, client_id: str, key: str) -> RegistrationResult | None:
        for _ in range(_CAS_ATTEMPTS):
            raw = await self._store.get(CLIENTS_NAMESPACE, client_id)
            if raw is None:
                return None
            record: dict[str, Any] = json.loads(raw)
            client = OAuthClientInformationFull.model_validate(record["client"])
            if client.token_endpoint_auth_method in CONFIDENTIAL_METHODS:
                return None  # an index entry from an earlier version: never reuse a confidential client
            if record["used"]:
                return RegistrationResult(client, None, reused=True)
            if await self._store.compare_and_set(CLIENTS_NAMESPACE, client_id, raw, raw, ttl=self._ttl):
                await self._store.put(REGISTRATIONS_NAMESPACE, key, client_id.encode(), ttl=self._ttl)
                return RegistrationResult(client, None, reused=True)
        raise RuntimeError("client registration did not settle under concurrent updates")

    async def touch(self, client_id: str) -> None:
        """Record that `client_id` was used (the token endpoint calls it on every grant).

        The first use removes the client's expiry: a client that has obtained tokens is
        kept until it is deleted. Later calls only read, so the hot path does not write.
        """
        for _ in range(_CAS_ATTEMPTS):
            raw = await self._store.get(CLIENTS_NAMESPACE, client_id) if _plausible_id(client_id) else None
            if raw is None:
                return
            record: dict[str, Any] = json.loads(raw)
            if record["used"]:
                return
            record["used"] = True
            if await self._store.compare_and_set(CLIENTS_NAMESPACE, client_id, raw, _encode(record)):
                key = record["fingerprint"]
                if key is None:
                    return
                owner = await self._store.get(REGISTRATIONS_NAMESPACE, key)
                if owner is None or owner == client_id.encode():
                    await self._store.put(REGISTRATIONS_NAMESPACE, key, client_id.encode())
                return

    async def delete(self, client_id: str) -> bool:
        """Forget a registered client; True if it existed. Its tokens are not revoked here."""
        raw = await self._store.take(CLIENTS_NAMESPACE, client_id) if _plausible_id(client_id) else None
        if raw is None:
            return False
        key = json.loads(raw)["fingerprint"]
        if key is not None:
            await self._store.compare_and_set(REGISTRATIONS_NAMESPACE, key, client_id.encode(), None)
        return True

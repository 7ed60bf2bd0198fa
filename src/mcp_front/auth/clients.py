"""The OAuth clients the authorization server knows, as the token endpoint sees them.

Registration (RFC 7591) and Client ID Metadata Documents both end in an
`OAuthClientInformationFull`, the mcp SDK's wire model, so the rest of the server
treats a registered client and a metadata-document client alike.
"""

from __future__ import annotations

from typing import Protocol

from mcp.shared.auth import OAuthClientInformationFull


class RegisteredClients(Protocol):
    """Looks clients up and checks their credentials."""

    async def get(self, client_id: str, *, requester: str | None = None) -> OAuthClientInformationFull | None:
        """The client, registered or described by a metadata document at `client_id`; None if unknown.

        `requester` is who asks (`rate_limit.address_key` of the request's client), so that
        fetching metadata documents on strangers' behalf can be limited per requester.
        """
        ...

    async def authenticate(
        self, client_id: str, client_secret: str | None
    ) -> OAuthClientInformationFull | None:
        """The client if `client_secret` is right for it (None for a public client), else None.

        A confidential client must present its secret; a public one (`none`) must not.
        Comparison is constant-time against the stored hash.
        """
        ...

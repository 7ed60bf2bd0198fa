"""Each user's own credentials for the services that need them, kept encrypted and handed to
that user's backends only."""

from mcp_front.credentials.records import Credential, CredentialKind, CredentialState
from mcp_front.credentials.vault import CREDENTIALS_NAMESPACE, CredentialVault, SealedCredential, VaultError

__all__ = [
    "CREDENTIALS_NAMESPACE",
    "Credential",
    "CredentialKind",
    "CredentialState",
    "CredentialVault",
    "SealedCredential",
    "VaultError",
]

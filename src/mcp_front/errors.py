"""`MCPFrontError`: the root of every error mcp-front raises on purpose."""

from __future__ import annotations

__all__ = ["MCPFrontError"]


class MCPFrontError(Exception):
    """Base class of every error mcp-front raises on purpose.

    Catch it to handle whatever the library refuses or fails at; anything else is a bug.
    The hierarchy, by where each error is defined::

        MCPFrontError
        ├── ConfigError              config.errors: a configuration that cannot be loaded, every
        │                            problem named by its key path with a fix
        ├── MissingDescriptionError  config.reference: a configuration key without a docstring
        ├── GatewayError             gateway: a gateway that cannot start (its audit log)
        ├── TLSFilesError            serving: a certificate or key that cannot serve HTTPS
        ├── AuditLogError            audit: the audit log file cannot be opened
        ├── BackendError             backends.base: a backend failure, told to the client as a
        │   │                        JSON-RPC error (`code`), or as HTTP `status` before a session
        │   └── PolicyDenied         backends.governance: a service's policy refuses the caller
        ├── ChildGone                backends.child_process: a stdio child whose pipes closed
        ├── SandboxPathRefused       backends.sandbox: a path to bind reached through a symlink
        ├── ArgumentRefused          backends.inline_arguments: an inline tool argument refused
        ├── HTTPError                backends.streamable_http.http11: an HTTP exchange with a
        │                            backend failed
        ├── EventStreamTooLarge      backends.streamable_http.event_stream: an event over its
        │                            limit (also a `ValueError`)
        ├── InvalidMessage           protocol.jsonrpc: JSON that is not one JSON-RPC message
        │                            (also a `ValueError`)
        ├── BodyTooLarge             transports.http: a request body over its limit
        ├── IdentityProviderError    idp.base: signing in with the identity provider failed
        ├── OAuthError               auth.errors: an OAuth error response (RFC 6749 §5.2)
        ├── RegistrationError        auth.rfc7591: client metadata refused (RFC 7591 §3.2.2)
        ├── ClientMetadataError      auth.client_metadata: a Client ID Metadata Document that
        │                            cannot be used
        ├── InvalidRedirectUri       auth.redirect_uris: a redirect URI the rules refuse (also a
        │                            `ValueError`)
        ├── TooManyClients           auth.client_store: no new client admitted for now
        ├── InvalidToken             auth.tokens.access: an access token that does not verify
        │   └── ExpiredToken         … because it expired
        ├── InvalidRefreshToken      auth.refresh: a refresh token unknown, spent or expired
        ├── VaultError               credentials.vault: a stored credential that cannot be opened
        ├── ServiceUnreachable       credentials.oauth_connections: a service's token endpoint
        │                            could not be used
        ├── GrantRefused             credentials.oauth_connections: … refused a grant for good
        ├── DecryptionError          crypto.keyring: a ciphertext no key of the keyring opens
        └── StoreUnavailable         storage.base: the store's server cannot be reached

    The signals a backend uses internally (a backend session that expired, an SSE
    endpoint gone stale) derive from it too, and never leave the library.
    """

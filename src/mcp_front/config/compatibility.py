"""Keys of the Go mcp-front's configuration that load here but do nothing, said out loud.

A configuration written for the Go mcp-front loads unchanged. Where one of its keys has no
effect here, `inert_keys` names it by its key path with what to do instead, so nothing is
accepted and silently ignored: `mcp-front validate` prints these, and the gateway logs them
when it starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from mcp_front.config.errors import ConfigIssue
from mcp_front.config.models import GatewayConfig

__all__ = ["inert_keys"]


def inert_keys(config: GatewayConfig) -> list[ConfigIssue]:
    """Every key of `config` that is read for compatibility and has no effect, and any
    setting a production gateway should not leave as it is."""
    return list(_inert(config))


def _inert(config: GatewayConfig) -> Iterator[ConfigIssue]:
    proxy = config.proxy
    if proxy.admin is not None:
        yield ConfigIssue(
            "proxy.admin",
            "has no effect: this gateway has no admin pages",
            "remove it; users manage their own clients and credentials at /my/",
        )
    auth = proxy.auth
    if auth is not None:
        for key, value in (
            ("gcpProject", auth.gcp_project),
            ("firestoreDatabase", auth.firestore_database),
            ("firestoreCollection", auth.firestore_collection),
        ):
            if value is not None:
                yield ConfigIssue(
                    f"proxy.auth.{key}",
                    "has no effect: Firestore storage and GCP IAM are not used here",
                    'remove it; "storage" chooses where state is kept (sqlite by default)',
                )
        if auth.jwt_secret is not None:
            yield ConfigIssue(
                "proxy.auth.jwtSecret",
                "has no effect: access tokens are signed with an asymmetric key (proxy.auth.signingKey)",
                "remove it",
            )
        https = urlsplit(auth.issuer).scheme == "https"
        if https and not auth.allowed_redirect_uri_hosts and not auth.allow_any_redirect_uri_host:
            yield ConfigIssue(
                "proxy.auth.allowedRedirectUriHosts",
                "is not set: clients may register redirect URIs on any https host "
                "(users still approve each client on the consent page)",
                'list your clients\' origins, e.g. ["https://claude.ai"], or set '
                '"allowAnyRedirectUriHost": true to say this is intended',
            )
    for name, server in config.mcp_servers.items():
        options = server.options
        if options.log_enabled is not None:
            yield ConfigIssue(
                f"mcpServers.{name}.options.logEnabled",
                "has no effect: every request is logged",
                "remove it; choose how much is logged with `mcp-front serve --log-level`",
            )
        if options.auth_tokens:
            yield ConfigIssue(
                f"mcpServers.{name}.options.authTokens",
                "has no effect: these tokens do not let anyone in, nor keep anyone out",
                'move them into "serviceAuths": [{"type": "bearer", "tokens": [...]}]',
            )

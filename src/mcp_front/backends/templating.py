"""Per-caller values in a service's launch settings: principal placeholders and user tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from pydantic import SecretStr

from mcp_front import crypto
from mcp_front.auth.principal import Principal
from mcp_front.auth.service_auth import basic_secret, bearer_secret
from mcp_front.config import BearerServiceAuth, ServerConfig, UserTokenTemplate

UserTokenSource = Callable[[Principal, str], Awaitable[str | None]]
"""Looks up the caller's own credential for a service (the credential vault)."""

ConfigValue = str | SecretStr | UserTokenTemplate


def with_static_user_tokens(
    servers: Mapping[str, ServerConfig],
    source: UserTokenSource | None,
    *,
    fingerprint_key: bytes | None = None,
) -> UserTokenSource | None:
    """`source`, except for a caller that presented a `serviceAuths` credential with its
    own `userToken` on the service: that token is its credential there (a service has no
    account to connect). Matched by the credential's fingerprint, so it holds for the same
    credential presented to an aggregate in front of the service."""
    tokens: dict[tuple[str, bytes], str] = {}
    for name, server in servers.items():
        for auth in server.service_auths:
            if auth.user_token is None:
                continue
            if isinstance(auth, BearerServiceAuth):
                secrets = [bearer_secret(token.get_secret_value()) for token in auth.tokens]
            else:
                secrets = [basic_secret(auth.username, auth.password.get_secret_value())]
            for secret in secrets:
                tokens[(name, crypto.fingerprint(secret, fingerprint_key))] = (
                    auth.user_token.get_secret_value()
                )
    if not tokens:
        return source

    async def lookup(principal: Principal, service: str) -> str | None:
        if principal.credential is not None and (service, principal.credential) in tokens:
            return tokens[(service, principal.credential)]
        return await source(principal, service) if source is not None else None

    return lookup


def render_principal(text: str, principal: Principal) -> str:
    """Fill `{{principal.subject}}` and `{{principal.email}}`; the config loader rejects other names."""
    return text.replace("{{principal.subject}}", principal.subject).replace(
        "{{principal.email}}", principal.email or ""
    )


async def render_value(
    value: ConfigValue,
    principal: Principal,
    service: str,
    user_tokens: UserTokenSource | None,
) -> str | None:
    """`value` for `principal`; None for a `$userToken` value when the caller has no
    credential for the service (the backend then gets no such value at all)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, UserTokenTemplate):
        token = await user_tokens(principal, service) if user_tokens is not None else None
        return value.render(token) if token is not None else None
    return render_principal(value, principal)

"""Per-caller values in a service's launch settings: principal placeholders and user tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import SecretStr

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError
from mcp_front.config import UserTokenTemplate

UserTokenSource = Callable[[Principal, str], Awaitable[str | None]]
"""Looks up the caller's own credential for a service (the credential vault)."""

ConfigValue = str | SecretStr | UserTokenTemplate


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
) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, UserTokenTemplate):
        token = await user_tokens(principal, service) if user_tokens is not None else None
        if token is None:
            raise BackendError(
                f"service '{service}' needs your own credential for it, and none is stored for "
                f"{principal.display_name}; connect the service first"
            )
        return value.render(token)
    return render_principal(value, principal)

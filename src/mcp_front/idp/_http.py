"""HTTP calls to identity providers, with failures turned into `IdentityProviderError`.

Providers take an `httpx2.AsyncClient` so the gateway can share its connection pool (and
tests can point one at a local server); without one they make their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx2

from mcp_front.idp.base import ErrorKind, IdentityProviderError

DEFAULT_TIMEOUT: Final = 10.0
_MAX_DESCRIPTION: Final = 200


def new_client() -> httpx2.AsyncClient:
    """A client for calls to the provider: bounded time, no redirects to other hosts."""
    return httpx2.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False)


async def send(
    http: httpx2.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> httpx2.Response:
    """Send one request; a connection failure raises a `network` error naming `what`."""
    try:
        return await http.request(method, url, headers=headers, data=data, params=params)
    except httpx2.TimeoutException:
        raise IdentityProviderError(
            "network", f"the identity provider did not answer the {what} in time"
        ) from None
    except httpx2.HTTPError as exc:
        raise IdentityProviderError(
            "network", f"could not reach the identity provider for the {what} ({type(exc).__name__})"
        ) from None


def json_object(
    response: httpx2.Response, *, what: str, kind: ErrorKind = "provider_error"
) -> dict[str, Any]:
    """The JSON object in a successful `response`; a 4xx raises `kind`, anything else `provider_error`."""
    if response.status_code >= 500:
        raise IdentityProviderError(
            "provider_error", f"the identity provider failed on the {what} (HTTP {response.status_code})"
        )
    if response.status_code >= 400:
        raise IdentityProviderError(
            kind,
            f"the identity provider refused the {what} (HTTP {response.status_code}){oauth_error(response)}",
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise IdentityProviderError(
            "provider_error", f"the identity provider's {what} answer is not a JSON object"
        )
    return body


def oauth_error(response: httpx2.Response) -> str:
    """`": invalid_grant (description)"` from an RFC 6749 error body, or `""`."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return describe_oauth_error(body) if isinstance(body, dict) else ""


def describe_oauth_error(body: Mapping[str, Any]) -> str:
    """The `error` and `error_description` of an OAuth error body, short and printable."""
    error = body.get("error")
    if not isinstance(error, str):
        return ""
    description = body.get("error_description")
    text = f": {error}"
    if isinstance(description, str) and description:
        text += f" ({description[:_MAX_DESCRIPTION].strip()})"
    return "".join(ch for ch in text if ch.isprintable())

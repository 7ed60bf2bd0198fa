"""OAuth errors as typed values, and their RFC 6749 §5.2 JSON responses.

An endpoint raises `OAuthError` (or returns one) and turns it into a response with
`to_response()`: the JSON body carries `error` and `error_description`, the status is the one
RFC 6749 names for the code, and every response forbids caching (§5.1). A description never
contains a secret; it is reduced to the characters RFC 6749 allows in `error_description`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from starlette.responses import JSONResponse

from mcp_front.errors import MCPFrontError

__all__ = [
    "NO_STORE",
    "OAuthError",
    "invalid_client",
    "invalid_grant",
    "invalid_request",
    "invalid_scope",
    "invalid_target",
    "unauthorized_client",
    "unsupported_grant_type",
]

NO_STORE: Mapping[str, str] = MappingProxyType({"Cache-Control": "no-store", "Pragma": "no-cache"})
"""Headers of every token-endpoint and revocation-endpoint response (RFC 6749 §5.1)."""

_MAX_DESCRIPTION = 200


class OAuthError(MCPFrontError):
    """An OAuth error response: `error` code, human-readable `description`, HTTP `status`."""

    __slots__ = ("description", "error", "headers", "status")

    def __init__(
        self, error: str, description: str, status: int = 400, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = _safe_description(description)
        self.status = status
        self.headers: Mapping[str, str] = MappingProxyType(dict(headers or {}))

    def to_json(self) -> dict[str, str]:
        """The RFC 6749 §5.2 body."""
        return {"error": self.error, "error_description": self.description}

    def to_response(self) -> JSONResponse:
        """The JSON response with the error's status, its headers and no-store caching."""
        return JSONResponse(self.to_json(), status_code=self.status, headers={**self.headers, **NO_STORE})

    def __repr__(self) -> str:
        return f"OAuthError({self.error!r}, {self.description!r}, status={self.status})"


def invalid_request(description: str, *, status: int = 400) -> OAuthError:
    """A parameter is missing, repeated, malformed, or the request is otherwise unusable."""
    return OAuthError("invalid_request", description, status)


def invalid_client(description: str, *, basic: bool = False) -> OAuthError:
    """Client authentication failed: 401, with a Basic challenge when the client used Basic."""
    headers = {"WWW-Authenticate": 'Basic realm="token", charset="UTF-8"'} if basic else {}
    return OAuthError("invalid_client", description, 401, headers)


def invalid_grant(description: str) -> OAuthError:
    """The code or refresh token is invalid, expired, revoked, used, or bound to something else."""
    return OAuthError("invalid_grant", description)


def unauthorized_client(description: str) -> OAuthError:
    """The authenticated client may not use this grant type."""
    return OAuthError("unauthorized_client", description)


def unsupported_grant_type(description: str) -> OAuthError:
    """The grant type is not one this server supports."""
    return OAuthError("unsupported_grant_type", description)


def invalid_scope(description: str) -> OAuthError:
    """The requested scope is unknown or exceeds what the grant covers."""
    return OAuthError("invalid_scope", description)


def invalid_target(description: str) -> OAuthError:
    """RFC 8707: the requested resource is invalid, unknown, or not covered by the grant."""
    return OAuthError("invalid_target", description)


def _safe_description(text: str) -> str:
    # RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
    cleaned = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)
    return cleaned[:_MAX_DESCRIPTION]

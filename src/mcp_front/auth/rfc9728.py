"""RFC 9728: OAuth 2.0 Protected Resource Metadata, one document per service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["WELL_KNOWN", "metadata_url", "protected_resource_metadata"]

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def metadata_url(resource: str) -> str:
    """Where the metadata of `resource` lives: the well-known segment inserted between
    the host and the resource's path (RFC 9728 §3.1)."""
    parts = urlsplit(resource)
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN + parts.path.rstrip("/"), "", ""))


def protected_resource_metadata(
    resource: str,
    *,
    authorization_server: str,
    scopes_supported: Sequence[str] = (),
    resource_name: str | None = None,
) -> dict[str, Any]:
    """The metadata document of one resource; `resource` is returned exactly as given, since
    a client checks it against the URL it derived the metadata URL from."""
    document: dict[str, Any] = {
        "resource": resource,
        "authorization_servers": [authorization_server],
        "bearer_methods_supported": ["header"],
        "scopes_supported": list(scopes_supported),
    }
    if resource_name is not None:
        document["resource_name"] = resource_name
    return document

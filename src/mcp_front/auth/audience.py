"""`AudienceValidator`: RFC 8707 resource identifiers, one per service.

The resource of service ``S`` is ``<baseURL>/<S>``. A client names it in `resource=` at
`/authorize` and `/token`; the access token carries it as `aud`; the resource server accepts
the token only on URLs under it. Everything is compared after `normalise()`, so
``HTTPS://Example.com:443/svc/`` and ``https://example.com/svc`` are the same resource, and
matching is by whole path segments, so ``…/svc`` never covers ``…/svc2``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from urllib.parse import urlsplit

__all__ = ["AudienceValidator", "normalise"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_SERVICE_NAME = re.compile(r"[A-Za-z0-9._~-]+")
# Sub-paths of a service that a client may also name as the resource.
_TRANSPORT_SUFFIXES = ("", "/mcp", "/sse")


def normalise(uri: str) -> str:
    """The canonical form of an http(s) resource URI.

    Lowercases scheme and host, drops the default port and trailing slashes, decodes
    percent-encoded unreserved characters (and uppercases the remaining escapes), and
    removes ``.`` and ``..`` segments (RFC 3986 §6.2.2). Raises `ValueError` for a URI that
    is not absolute http(s), or carries userinfo, a query or a fragment (RFC 8707 §2).
    """
    if not isinstance(uri, str) or not uri:
        raise ValueError("resource must be a non-empty absolute URI")
    if any(c.isspace() for c in uri):
        raise ValueError("resource must not contain whitespace")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"resource must be an http or https URI (got scheme {parts.scheme or 'none'!r})")
    if "@" in parts.netloc:
        raise ValueError("resource must not contain userinfo (user@host)")
    if "?" in uri:
        raise ValueError("resource must not contain a query")
    if "#" in uri:
        raise ValueError("resource must not contain a fragment")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("resource must have a host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("resource has an invalid port") from None
    if ":" in host:
        host = f"[{host}]"
    authority = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_normalise_escapes(parts.path)).rstrip("/")
    return f"{scheme}://{authority}{path}"


class AudienceValidator:
    """The resource identifiers of a gateway's services, and matching against them."""

    __slots__ = ("_base", "_by_resource", "_resources")

    def __init__(self, base_url: str, services: Iterable[str]) -> None:
        self._base = normalise(base_url)
        resources: dict[str, str] = {}
        by_resource: dict[str, str] = {}
        for service in services:
            if not _SERVICE_NAME.fullmatch(service) or service in (".", ".."):
                raise ValueError(
                    f"service name {service!r} cannot be a path segment (use letters, digits, '-._~')"
                )
            resource = f"{self._base}/{service}"
            resources[service] = resource
            for suffix in _TRANSPORT_SUFFIXES:
                by_resource[resource + suffix] = service
        self._resources = MappingProxyType(resources)
        self._by_resource = by_resource

    @property
    def base_url(self) -> str:
        """The normalised base URL."""
        return self._base

    @property
    def resources(self) -> Mapping[str, str]:
        """Service name → its resource identifier."""
        return self._resources

    def resource_for(self, service: str) -> str:
        """The resource identifier of a configured service (`KeyError` if unknown)."""
        try:
            return self._resources[service]
        except KeyError:
            raise KeyError(f"no service named {service!r}") from None

    def service_for(self, resource: str) -> str | None:
        """The configured service a requested `resource` names, or `None`.

        ``<base>/<S>``, ``<base>/<S>/mcp`` and ``<base>/<S>/sse`` all name ``S``. Raises
        `ValueError` (with a message fit for an `invalid_target` error) if it is not a valid
        resource URI at all.
        """
        return self._by_resource.get(normalise(resource))

    @staticmethod
    def covers(audience: str, request_url: str) -> bool:
        """Whether a token for `audience` may be used on `request_url`.

        True when the request is the audience itself or below it by whole path segments, on
        the same scheme, host and port. The request's query string is ignored; anything that
        does not normalise is not covered.
        """
        try:
            wanted = normalise(audience)
            target = normalise(request_url.split("#", 1)[0].split("?", 1)[0])
        except ValueError:
            return False
        return target == wanted or target.startswith(wanted + "/")

    def __repr__(self) -> str:
        return f"AudienceValidator({self._base!r}, {list(self._resources)!r})"


def _normalise_escapes(path: str) -> str:
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    return _PERCENT.sub(fix, path)


def _remove_dot_segments(path: str) -> str:
    if not path:
        return ""
    out: list[str] = []
    segments = path.split("/")
    for segment in segments[1:] if path.startswith("/") else segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if segments[-1] in (".", "..") and out and out[-1] != "":
        out.append("")
    return "/" + "/".join(out)

"""Redirect URIs: which ones a client may register, and matching a request against them.

Registration accepts (RFC 8252, OAuth 2.1 §2.3.1) `https` URIs, `http` on a loopback host,
and private-use schemes that are reverse domain names (`com.example.app:/cb`, RFC 8252
§7.1), an allow rule that configuration can only widen by naming schemes. A URI must be in
its normal form, because matching (`match_redirect_uri`) compares exact strings with no
normalisation (RFC 9700 §4.1.3), the loopback port alone being free (RFC 8252 §7.3): so
``http://evil@127.0.0.1:5555/cb``, ``…/x/../cb`` and ``http://127.1:5555/cb`` never match
``http://127.0.0.1:5555/cb``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from pydantic import AnyUrl, ConfigDict, TypeAdapter, ValidationError

from mcp_front.errors import MCPFrontError
from mcp_front.text import BIDI_CONTROLS

__all__ = [
    "DEFAULT_PRIVATE_USE_SCHEMES",
    "LOOPBACK_HOSTS",
    "MAX_URI_LENGTH",
    "InvalidRedirectUri",
    "RedirectUriRules",
    "check_redirect_uri",
    "match_redirect_uri",
]

MAX_URI_LENGTH: Final = 2048
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "[::1]", "localhost"})
DEFAULT_PRIVATE_USE_SCHEMES: Final = frozenset({"cursor"})
"""Private-use schemes allowed although they are not reverse domain names: Cursor's."""

_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.\-]*")
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_REVERSE_DOMAIN: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
# A URI as the registration model keeps it (an empty path stays empty).
_AS_REGISTERED: Final = TypeAdapter(AnyUrl, config=ConfigDict(url_preserve_empty_path=True))
_LOOPBACK_URI: Final = re.compile(
    r"http://(?P<host>127\.0\.0\.1|\[::1\]|localhost)(?::(?P<port>[0-9]{1,5}))?(?P<rest>[/?].*)?"
)


class InvalidRedirectUri(MCPFrontError, ValueError):
    """A redirect URI that cannot be registered; the message says why, for the client."""


@dataclass(frozen=True, slots=True)
class RedirectUriRules:
    """What a redirect URI may be, beyond the rules no configuration relaxes.

    `private_use_schemes` are schemes allowed although they are not reverse domain names.
    `allowed_hosts` is the Go mcp-front's `allowedRedirectUriHosts`: when not empty, a
    redirect URI must match one of these origins (``https://claude.ai``,
    ``cursor://anysphere.cursor-mcp``) by scheme and host, case-insensitively; an origin
    without a port matches any port. http loopback URIs are always allowed (RFC 8252 §7.3).
    """

    private_use_schemes: frozenset[str] = DEFAULT_PRIVATE_USE_SCHEMES
    allowed_hosts: tuple[str, ...] = ()

    def allows(self, uri: str) -> bool:
        """Whether `uri` (already a valid redirect URI) is on an allowed host."""
        if not self.allowed_hosts or _without_loopback_port(uri) is not None:
            return True
        parts = urlsplit(uri)
        try:
            port = parts.port
        except ValueError:
            return False
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        for allowed in self.allowed_hosts:
            want = urlsplit(allowed if "://" in allowed else f"{scheme}://{allowed}")
            same_host = bool(host) and (want.hostname or "").lower() == host
            if want.scheme.lower() == scheme and same_host and want.port in (None, port):
                return True
        return False


def check_redirect_uri(raw: str, rules: RedirectUriRules | None = None) -> AnyUrl:
    """The redirect URI `raw` if a client may register it; `InvalidRedirectUri` otherwise.

    Never a fragment, user credentials, whitespace or control characters, or a URI that is
    not in its normal form.
    """
    rules = rules or RedirectUriRules()
    if not isinstance(raw, str) or not raw:
        raise InvalidRedirectUri("each redirect URI must be a non-empty string")
    if len(raw) > MAX_URI_LENGTH:
        raise InvalidRedirectUri(f"redirect URI longer than {MAX_URI_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c in BIDI_CONTROLS for c in raw):
        raise InvalidRedirectUri(f"redirect URI {raw!r} contains whitespace or control characters")
    if "#" in raw:
        raise InvalidRedirectUri(f"redirect URI {raw!r} must not contain a fragment (RFC 6749 §3.1.2)")
    scheme = raw.split(":", 1)[0].lower() if ":" in raw else ""
    if not _SCHEME.fullmatch(scheme):
        raise InvalidRedirectUri(f"redirect URI {raw!r} is not an absolute URI")
    try:
        url = _AS_REGISTERED.validate_python(raw)
    except ValidationError:
        raise InvalidRedirectUri(f"redirect URI {raw!r} is not a valid URI") from None
    if url.username is not None or url.password is not None:
        raise InvalidRedirectUri(f"redirect URI {raw!r} must not contain user credentials")
    if scheme == "https":
        if not url.host:
            raise InvalidRedirectUri(f"redirect URI {raw!r} has no host")
    elif scheme == "http":
        if (url.host or "").lower() not in LOOPBACK_HOSTS:
            raise InvalidRedirectUri(
                f"redirect URI {raw!r} uses http on a non-loopback host: use https, or http on "
                "127.0.0.1, [::1] or localhost for a native app"
            )
    elif not (_REVERSE_DOMAIN.fullmatch(scheme) or scheme in rules.private_use_schemes):
        raise InvalidRedirectUri(
            f"redirect URI scheme {scheme!r} is not allowed: a private-use scheme must be a reverse "
            "domain name the application's owner controls, such as com.example.app (RFC 8252 §7.1)"
        )
    normal = str(url)
    if normal != raw:
        raise InvalidRedirectUri(
            f"redirect URI {raw!r} is not in normal form (it reads as {normal!r}): register exactly "
            "the URI the application sends"
        )
    if not rules.allows(raw):
        raise InvalidRedirectUri(
            f"redirect URI {raw!r} is on a host this gateway does not allow "
            "(proxy.auth.allowedRedirectUriHosts)"
        )
    return url


def match_redirect_uri(
    requested: str | None, registered: list[str], *, loopback_port_flexibility: bool = True
) -> str | None:
    """The redirect URI to use, or None if `requested` is not one the client registered.

    Strings are compared exactly. With `loopback_port_flexibility`, an http loopback URI
    may name any port: the URIs must then be equal once the port is taken out of each. An
    omitted `requested` is allowed only when exactly one URI is registered.
    """
    if requested is None:
        return registered[0] if len(registered) == 1 else None
    if len(requested) > MAX_URI_LENGTH or "#" in requested:
        return None
    if requested in registered:
        return requested
    if not loopback_port_flexibility:
        return None
    portless = _without_loopback_port(requested)
    if portless is None:
        return None
    return requested if any(_without_loopback_port(uri) == portless for uri in registered) else None


def _without_loopback_port(uri: str) -> str | None:
    """An http loopback URI written exactly as ``http://<loopback host>[:<port>]<rest>``,
    with the port taken out; None for any other URI."""
    match = _LOOPBACK_URI.fullmatch(uri)
    if match is None:
        return None
    port = match["port"]
    if port is not None and (port != str(int(port)) or not 0 < int(port) < 65536):
        return None
    return f"http://{match['host']}{match['rest'] or ''}"

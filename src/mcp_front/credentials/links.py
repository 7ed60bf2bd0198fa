"""Where a user connects a service: `<baseURL>/my/tokens?service=<name>&for=<tag>`.

The link names the user it was made for by a tag (a truncated digest of their principal
key, not their email), so the page can check that the person signed in to the browser is
the one whose MCP session needed the credential before storing anything: a link passed
on to someone else, or planted by a phisher, stores nothing for the wrong person.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from mcp_front.crypto import digest

__all__ = ["TOKENS_PAGE", "connect_url", "user_tag", "user_tag_matches"]

TOKENS_PAGE = "/my/tokens"


def user_tag(user: str) -> str:
    """The tag of a principal key (``user:<subject>``) in connect links."""
    return digest(f"connect-link\x00{user}").hex()[:32]


def user_tag_matches(user: str, tag: str | None) -> bool:
    return tag is not None and hmac.compare_digest(user_tag(user).encode(), tag.encode())


def connect_url(base_url: str, service: str, user: str | None = None) -> str:
    """The page where `user` connects `service`."""
    query = {"service": service} if user is None else {"service": service, "for": user_tag(user)}
    return f"{base_url.rstrip('/')}{TOKENS_PAGE}?{urlencode(query)}"

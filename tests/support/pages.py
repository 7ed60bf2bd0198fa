"""The gateway's pages as a test's browser sees them: redirects followed with its cookies,
and the CSRF token a page's forms carry."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx2

MAX_HOPS = 15
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def follow(http: httpx2.AsyncClient, response: httpx2.Response) -> httpx2.Response:
    """`response`, or where its redirects lead (the identity provider's included)."""
    for _ in range(MAX_HOPS):
        if not response.is_redirect:
            return response
        response = await http.get(urljoin(str(response.url), response.headers["location"]))
    raise AssertionError("too many redirects")


def csrf_of(page: str) -> str:
    """The CSRF token of the page's forms."""
    match = _CSRF.search(page)
    assert match is not None, page
    return match.group(1)

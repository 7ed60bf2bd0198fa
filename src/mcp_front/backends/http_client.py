"""The pooled HTTP client every HTTP backend shares.

One client serves every user's sessions, so it keeps no cookies: a `Set-Cookie` one
backend session received would otherwise ride along on every other user's requests to
that host. Redirects are not followed, so a backend cannot send a request, with its
configured credentials, somewhere else.
"""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx2


def backend_client(
    *,
    timeout: httpx2.Timeout,
    max_keepalive_connections: int = 100,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=transport,
        timeout=timeout,
        limits=httpx2.Limits(max_connections=None, max_keepalive_connections=max_keepalive_connections),
        follow_redirects=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )

"""The authorization server's endpoints behind per-address rate limits.

A request past its limit is answered before any work: 429 with `Retry-After`, as an OAuth
error body for the endpoints clients call (`/token`, `/register`, `/revoke`) and as a page
for the one a person's browser opens (`/authorize`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from mcp_front.auth.errors import OAuthError
from mcp_front.metrics import RATE_LIMITED
from mcp_front.rate_limit import RateLimit, RateLimiter, address_key
from mcp_front.text import escaped
from mcp_front.web.pages import error_page

__all__ = ["rate_limited", "retry_after"]

logger = logging.getLogger("mcp_front.auth")

Endpoint = Callable[[Request], Awaitable[Response]]


def retry_after(wait: float) -> str:
    """A `Retry-After` value: whole seconds, at least one."""
    return str(max(1, math.ceil(wait)))


def rate_limited(
    endpoint: Endpoint, limiter: RateLimiter, limit: RateLimit | None, name: str, *, page: bool = False
) -> Endpoint:
    """`endpoint`, refusing an address that made more than `limit` requests; `endpoint`
    itself when `limit` is None."""
    if limit is None:
        return endpoint

    async def limited(request: Request) -> Response:
        address = address_key(request.client.host if request.client else None)
        wait = await limiter.acquire(f"{name}:{address}", limit)
        if wait <= 0:
            return await endpoint(request)
        retry = retry_after(wait)
        RATE_LIMITED.inc(name)
        logger.warning("%s from %s refused: rate limit reached", name, escaped(address))
        if page:
            response: Response = error_page(
                "Too many sign-in attempts",
                f"Too many requests came from your network. Try again in {retry} seconds.",
                status_code=429,
            )
            response.headers["Retry-After"] = retry
            return response
        error = OAuthError(
            "temporarily_unavailable",
            f"too many requests; retry in {retry} seconds",
            429,
            {"Retry-After": retry},
        )
        return error.to_response()

    return limited

"""`POST /register`: Dynamic Client Registration (RFC 7591 §3), within a `NewClientBudget`.

The metadata rules are `rfc7591.validate_client_metadata`'s; this module reads the
request, counts new clients against the budget, and answers as §3.2 says.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcp_front.auth.client_store import StoredClients, TooManyClients
from mcp_front.auth.errors import OAuthError
from mcp_front.auth.forms import read_body
from mcp_front.auth.redirect_uris import RedirectUriRules
from mcp_front.auth.rfc7591 import NO_STORE, RegistrationError, metadata_error, validate_client_metadata
from mcp_front.metrics import RATE_LIMITED
from mcp_front.rate_limit import RateLimit, RateLimiter, address_key, network_key
from mcp_front.text import escaped

__all__ = ["MAX_REGISTRATION_BYTES", "NewClientBudget", "registration_endpoint"]

logger = logging.getLogger(__name__)

MAX_REGISTRATION_BYTES: Final = 64 * 1024


class NewClientBudget:
    """How many clients registration may create: per address, and for all addresses together.

    The overall budget is what bounds the storage. Each address's first
    `RESERVED_PER_ADDRESS` new clients do not draw on it, so a few addresses that use it up
    cannot keep everyone else from registering; nor do a network's first
    `RESERVED_PER_NETWORK` (an IPv4 /24, an IPv6 /48), so that holding many addresses of
    one network does not multiply the reserve.
    """

    RESERVED_PER_ADDRESS: Final = RateLimit(5, timedelta(hours=1))
    RESERVED_PER_NETWORK: Final = RateLimit(20, timedelta(hours=1))

    def __init__(
        self, limiter: RateLimiter, *, per_address: RateLimit | None, overall: RateLimit | None
    ) -> None:
        self._limiter = limiter
        self._per_address = per_address
        self._overall = overall

    async def admit(self, address: str) -> float:
        """Count a new client from `address`: 0 if allowed, else the seconds to wait."""
        if self._per_address is not None:
            wait = await self._limiter.acquire(f"new-clients:{address}", self._per_address)
            if wait > 0:
                return wait
        if self._overall is None:
            return 0.0
        reserved = await self._limiter.acquire(f"new-clients-reserved:{address}", self.RESERVED_PER_ADDRESS)
        if reserved == 0:
            network = f"new-clients-reserved-network:{network_key(address)}"
            if await self._limiter.acquire(network, self.RESERVED_PER_NETWORK) == 0:
                return 0.0
        return await self._limiter.acquire("new-clients-overall", self._overall)


def registration_endpoint(
    clients: StoredClients,
    budget: NewClientBudget | None = None,
    *,
    redirect_rules: RedirectUriRules | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for `POST /register`: RFC 7591 in, `201` with the client information out.

    The client secret of a confidential client appears in this response only. Requests over
    `MAX_REGISTRATION_BYTES` get `413`; a new client past `budget` gets `429` with
    `Retry-After` (finding an identical public client again costs nothing).
    """

    async def register(request: Request) -> Response:
        if request.method != "POST":
            error = metadata_error("registration requires POST")
            return error.response(405, {"Allow": "POST"})
        address = address_key(request.client.host if request.client else None)
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            return metadata_error("the registration request must be application/json").response()
        try:
            body = await read_body(request, max_body=MAX_REGISTRATION_BYTES)
        except OAuthError as unread:
            if unread.status == 413:
                error = metadata_error(f"the registration request exceeds {MAX_REGISTRATION_BYTES} bytes")
                return error.response(413)
            return metadata_error(unread.description).response()
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return metadata_error("the registration request is not valid JSON").response()
        try:
            metadata = validate_client_metadata(data, redirect_rules=redirect_rules)
        except RegistrationError as error:
            return error.response()
        try:
            result = await clients.register(
                metadata, admit=None if budget is None else functools.partial(budget.admit, address)
            )
        except TooManyClients as refused:
            retry = str(max(1, math.ceil(refused.retry_after)))
            RATE_LIMITED.inc("newClients")
            logger.warning("client registration from %s refused: too many new clients", escaped(address))
            too_many = RegistrationError(
                "temporarily_unavailable", f"too many new clients; retry in {retry} seconds"
            )
            return too_many.response(429, {"Retry-After": retry})
        information = result.client.model_dump(mode="json", exclude_none=True)
        if result.client_secret is not None:
            information["client_secret"] = result.client_secret
            information["client_secret_expires_at"] = 0
        logger.info(
            "client %s %s (%s)",
            result.client.client_id,
            "registered again" if result.reused else "registered",
            escaped(result.client.client_name or "unnamed"),
        )
        return JSONResponse(information, status_code=201, headers=NO_STORE)

    return register

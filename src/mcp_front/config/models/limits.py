"""Limits on what callers that have not signed in can make the gateway do, and who is a proxy."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field

from mcp_front.config.durations import PositiveDuration
from mcp_front.config.errors import config_value_error
from mcp_front.config.models._base import ConfigModel


class RateLimitRule(ConfigModel):
    """At most `requests` per `per`, in bursts of up to `requests`."""

    requests: int = Field(ge=1, examples=[300])
    """How many requests are allowed per `per`, which is also the largest burst."""
    per: PositiveDuration = Field(examples=["1m"])
    """The period the requests are counted over."""


def _rule(requests: int, per: timedelta) -> RateLimitRule:
    return RateLimitRule(requests=requests, per=per)


_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)


class RateLimitsConfig(ConfigModel):
    """Per-address limits (an IPv4 address, or an IPv6 /64) on the endpoints anyone can
    reach, and per-caller limits on each service; `null` turns one off. Past a limit the
    answer is 429 with `Retry-After`.

    The defaults stop a flood from one address and are far above what a whole company
    behind one NAT address sends in normal use.
    """

    authorize: RateLimitRule | None = _rule(300, _MINUTE)
    """Sign-ins started at `/authorize`; each keeps a pending sign-in for ten minutes."""
    token: RateLimitRule | None = _rule(1200, _MINUTE)
    """Requests to `/token`: code exchanges and refreshes."""
    registration: RateLimitRule | None = Field(default=_rule(120, _MINUTE), alias="register")
    """Requests to `/register`, including those that find an identical public client again."""
    revoke: RateLimitRule | None = _rule(300, _MINUTE)
    """Requests to `/revoke`."""
    new_clients: RateLimitRule | None = _rule(60, _HOUR)
    """Clients `/register` creates (new records in the storage)."""
    new_clients_overall: RateLimitRule | None = _rule(5000, _HOUR)
    """Clients created by all addresses together. Each address's first five an hour do not
    count against it, so that a few addresses using it up lock nobody else out."""
    failed_authentication: RateLimitRule | None = _rule(60, _MINUTE)
    """Requests to a service whose static credentials (`serviceAuths`) are wrong. Past it,
    the address's static credentials are not checked at all until it has slowed down (the
    gateway's own OAuth tokens still are: they cannot be guessed)."""
    client_metadata_fetches: RateLimitRule | None = _rule(120, _MINUTE)
    """Client metadata documents fetched for everyone together (a document is cached). Only
    fetches from addresses that passed the check count, and each address's first three a
    minute do not, so a few addresses cannot use it up for everyone."""
    client_metadata_fetches_per_address: RateLimitRule | None = _rule(20, _MINUTE)
    """Client metadata documents one address can make the gateway fetch."""
    mcp_requests: RateLimitRule | None = _rule(600, _MINUTE)
    """Requests each caller sends each service (a message posted, a stream opened, a session
    deleted): per signed-in user or static credential, per address on a service open to
    anyone. Counted for the whole deployment when replicas share a store."""


def check_proxy_address(value: str) -> str:
    """Accept an IP address or network in CIDR notation, as a trusted proxy."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise config_value_error(
            "trusted_proxy",
            "is not an IP address or network",
            fix='write an address such as "10.0.0.5" or a network such as "10.0.0.0/8"',
            show_input=True,
        ) from None
    return value


ProxyAddress = Annotated[str, AfterValidator(check_proxy_address)]
"""An IP address or CIDR network a trusted reverse proxy connects from."""

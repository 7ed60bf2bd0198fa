"""Client ID Metadata Documents: a client whose `client_id` is an `https://` URL describing it.

The authorization server fetches the URL and reads the client's metadata there instead of
requiring a registration. Fetching a URL a stranger chose is a server-side request forgery
risk, so `ClientMetadataDocuments`:

- resolves the host itself and refuses the fetch if any address is private, loopback,
  link-local, multicast, reserved or otherwise not global (unless
  `allow_private_addresses`), then connects to a checked address, so DNS cannot change its
  answer between the check and the connection; TLS still verifies the certificate for the
  URL's host name;
- never follows redirects, reads at most `max_bytes`, and gives up after `timeout`;
- accepts only a document whose `client_id` equals the URL exactly, whose redirect URIs
  follow the registration rules, and which describes a public client.

Documents are cached per `Cache-Control: max-age`, bounded by `min_cache` and `max_cache`.
When the host cannot be reached (or answers 5xx), a cached document up to `max_stale` old
is served, and a warning is logged.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Self
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp.shared.auth import OAuthClientInformationFull

from mcp_front.auth.redirect_uris import RedirectUriRules
from mcp_front.auth.rfc7591 import RegistrationError, validate_client_metadata
from mcp_front.errors import MCPFrontError
from mcp_front.rate_limit import MemoryRateLimiter, RateLimit, RateLimiter
from mcp_front.storage import Clock
from mcp_front.text import escaped

__all__ = [
    "ClientMetadataDocuments",
    "ClientMetadataError",
    "Resolver",
    "check_address",
    "check_client_id_url",
    "resolve_host",
]

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves (host, port) to IP address strings; injectable for tests."""

_MAX_AGE: Final = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_NO_CACHE: Final = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\b", re.IGNORECASE)
_PUBLIC_METHODS: Final = frozenset({"none"})
RESERVED_PER_REQUESTER: Final = RateLimit(3, timedelta(minutes=1))
"""Fetches each requester may make without drawing on the budget of everyone."""


class ClientMetadataError(MCPFrontError):
    """The document at a client-id URL could not be fetched or is not acceptable."""


class _Unreachable(ClientMetadataError):
    """The host did not answer usefully (network error, timeout, 5xx): a cached copy may do."""


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, through the system resolver."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and leads to: IPv4-mapped, 6to4
    (2002::/16), Teredo (2001::/32, its client) or NAT64 (64:ff9b::/96)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_address(
    address: str, *, allow_private: bool = False
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IP `address` if a metadata document may be fetched from it; ClientMetadataError otherwise.

    An IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4, Teredo, NAT64) is judged
    by the IPv4 address it leads to, and local-use NAT64 (64:ff9b:1::/48) is never public.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        raise ClientMetadataError(f"{address!r} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL and not allow_private:
            raise ClientMetadataError(f"address {ip} is not public (local-use NAT64)")
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    if allow_private:
        if ip.is_multicast or ip.is_unspecified:
            raise ClientMetadataError(f"address {ip} is not a unicast host")
        return ip
    if (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    ):
        raise ClientMetadataError(f"address {ip} is not public")
    return ip


def check_client_id_url(client_id: str) -> tuple[str, int]:
    """The (host, port) of a client-id URL, if it has the form the specification requires.

    `https`, a host, a path, no fragment, no user credentials, no `.` or `..` segments.
    """
    if len(client_id) > 2048 or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in client_id):
        raise ClientMetadataError("the client id URL is too long or contains whitespace")
    if not client_id.isascii():
        raise ClientMetadataError(
            "the client id URL must be ASCII (an internationalised host in its xn-- form)"
        )
    try:
        parts = urlsplit(client_id)
        hostname = parts.hostname
    except ValueError:
        raise ClientMetadataError("the client id URL is not a valid URL") from None
    if parts.scheme != "https" or not hostname:
        raise ClientMetadataError("the client id URL must be https with a host")
    if "#" in client_id or "@" in parts.netloc:
        raise ClientMetadataError("the client id URL must have no fragment and no user credentials")
    if parts.path in ("", "/") or any(segment in (".", "..") for segment in parts.path.split("/")):
        raise ClientMetadataError("the client id URL must have a path without . or .. segments")
    try:
        port = parts.port or 443
    except ValueError:
        raise ClientMetadataError("the client id URL has an invalid port") from None
    return hostname, port


@dataclass(frozen=True, slots=True)
class _Cached:
    client: OAuthClientInformationFull
    fetched_at: float
    fresh_until: float


class ClientMetadataDocuments:
    """Fetches, checks and caches Client ID Metadata Documents.

    `http` is the client used for fetching; None creates a private one (no proxies from
    the environment) that `aclose` closes. Its redirect following is always turned off.
    """

    def __init__(
        self,
        http: httpx2.AsyncClient | None = None,
        *,
        allow_private_addresses: bool = False,
        max_bytes: int = 5 * 1024,
        timeout: timedelta = timedelta(seconds=5),
        min_cache: timedelta = timedelta(minutes=1),
        max_cache: timedelta = timedelta(days=1),
        default_cache: timedelta = timedelta(minutes=5),
        max_stale: timedelta = timedelta(days=7),
        max_entries: int = 1000,
        resolver: Resolver = resolve_host,
        clock: Clock = time.monotonic,
        redirect_rules: RedirectUriRules | None = None,
        limiter: RateLimiter | None = None,
        fetches: RateLimit | None = None,
        fetches_per_requester: RateLimit | None = None,
    ) -> None:
        """`limiter` counts downloads: `fetches_per_requester` per requester (before the host
        is even resolved), and `fetches` for everyone together, of addresses that passed the
        check; each requester's first `RESERVED_PER_REQUESTER` do not draw on `fetches`, so a
        few requesters cannot use it up for everyone. Past a limit a cached copy is served if
        there is one. `redirect_rules` apply to the documents' redirect URIs as to
        registrations'."""
        self._own_http = http is None
        self._redirect_rules = redirect_rules
        self._limiter = limiter if limiter is not None else MemoryRateLimiter(max_keys=10_000)
        self._fetches = fetches
        self._fetches_per_requester = fetches_per_requester
        self._http = http if http is not None else httpx2.AsyncClient(trust_env=False)
        self._allow_private = allow_private_addresses
        self._max_bytes = max_bytes
        self._timeout = timeout.total_seconds()
        self._min_cache = min_cache.total_seconds()
        self._max_cache = max_cache.total_seconds()
        self._default_cache = default_cache.total_seconds()
        self._max_stale = max_stale.total_seconds()
        self._max_entries = max_entries
        self._resolver = resolver
        self._clock = clock
        self._cache: OrderedDict[str, _Cached] = OrderedDict()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def get(self, client_id: str, *, requester: str | None = None) -> OAuthClientInformationFull | None:
        """The client the document at `client_id` describes, or None (the reason is logged)."""
        try:
            return await self.fetch(client_id, requester=requester)
        except ClientMetadataError as exc:
            logger.warning("client metadata document %s refused: %s", escaped(client_id), escaped(exc))
            return None

    async def fetch(self, client_id: str, *, requester: str | None = None) -> OAuthClientInformationFull:
        """Like `get`, but raises ClientMetadataError saying why a document is refused."""
        now = self._clock()
        cached = self._cache.get(client_id)
        if cached is not None and now < cached.fresh_until:
            return cached.client
        try:
            client, lifetime = await self._download(client_id, requester)
        except _Unreachable as exc:
            if cached is not None and now - cached.fetched_at <= self._max_stale:
                logger.warning(
                    "client metadata document %s could not be fetched (%s); serving the copy cached "
                    "%d seconds ago",
                    escaped(client_id),
                    escaped(exc),
                    int(now - cached.fetched_at),
                )
                return cached.client
            raise
        except ClientMetadataError:
            self._cache.pop(client_id, None)
            raise
        self._cache[client_id] = _Cached(client, now, now + lifetime)
        self._cache.move_to_end(client_id)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return client

    async def _count_requester(self, requester: str | None) -> None:
        """Refuse a download past the requester's own limit: the gateway does not resolve or
        fetch on anyone's behalf as fast as they ask."""
        if requester is None or self._fetches_per_requester is None:
            return
        wait = await self._limiter.acquire(f"metadata-fetches-by:{requester}", self._fetches_per_requester)
        if wait > 0:
            raise _Unreachable(f"too many document fetches; try again in {math.ceil(wait)} seconds")

    async def _count_everyone(self, requester: str | None) -> None:
        if self._fetches is None:
            return
        if requester is not None:
            key = f"metadata-fetches-reserved:{requester}"
            if await self._limiter.acquire(key, RESERVED_PER_REQUESTER) == 0:
                return
        wait = await self._limiter.acquire("metadata-fetches", self._fetches)
        if wait > 0:
            raise _Unreachable(f"too many document fetches; try again in {math.ceil(wait)} seconds")

    async def _addresses(self, host: str, port: int) -> list[str]:
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            try:
                found = await self._resolver(host, port)
            except OSError as exc:
                raise _Unreachable(f"cannot resolve {host}: {exc}") from None
        else:
            found = [str(literal)]
        if not found:
            raise _Unreachable(f"{host} has no address")
        return [str(check_address(address, allow_private=self._allow_private)) for address in found]

    async def _download(
        self, client_id: str, requester: str | None
    ) -> tuple[OAuthClientInformationFull, float]:
        host, port = check_client_id_url(client_id)
        await self._count_requester(requester)
        with anyio.move_on_after(self._timeout) as scope:
            addresses = await self._addresses(host, port)
            # Only a fetch from an address that passed the check draws on the budget of all.
            await self._count_everyone(requester)
            body, cache_control = await self._get(client_id, host, addresses[0])
        if scope.cancelled_caught:
            raise _Unreachable(f"no answer within {self._timeout:g} seconds")
        return self._parse(client_id, body), self._lifetime(cache_control)

    async def _get(self, client_id: str, host: str, address: str) -> tuple[bytes, str]:
        parts = urlsplit(client_id)
        ip_host = f"[{address}]" if ":" in address else address
        pinned = parts._replace(netloc=f"{ip_host}:{parts.port or 443}").geturl()
        headers = {"Host": parts.netloc, "Accept": "application/json", "Connection": "close"}
        try:
            async with self._http.stream(
                "GET",
                pinned,
                headers=headers,
                follow_redirects=False,
                timeout=self._timeout,
                extensions={"sni_hostname": host},
            ) as response:
                if response.is_redirect:
                    raise ClientMetadataError(
                        f"the host answered {response.status_code}: redirects are not followed"
                    )
                if response.status_code >= 500:
                    raise _Unreachable(f"the host answered {response.status_code}")
                if response.status_code != 200:
                    raise ClientMetadataError(f"the host answered {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self._max_bytes:
                    raise ClientMetadataError(f"the document exceeds {self._max_bytes} bytes")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise ClientMetadataError(f"the document exceeds {self._max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks), response.headers.get("cache-control", "")
        except httpx2.HTTPError as exc:
            raise _Unreachable(f"{type(exc).__name__}: {exc}") from None

    def _parse(self, client_id: str, body: bytes) -> OAuthClientInformationFull:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise ClientMetadataError("the document is not JSON") from None
        if not isinstance(document, dict):
            raise ClientMetadataError("the document is not a JSON object")
        if document.get("client_id") != client_id:
            raise ClientMetadataError("the document's client_id is not exactly its URL")
        if document.get("client_secret") is not None or document.get("client_secret_expires_at") is not None:
            raise ClientMetadataError("a metadata document must not carry a client secret")
        metadata = {key: value for key, value in document.items() if key != "client_id"}
        try:
            validated = validate_client_metadata(
                metadata, allowed_auth_methods=_PUBLIC_METHODS, redirect_rules=self._redirect_rules
            )
        except RegistrationError as exc:
            raise ClientMetadataError(exc.description) from None
        return OAuthClientInformationFull.model_validate(
            {**validated.model_dump(mode="json", exclude_none=True), "client_id": client_id}
        )

    def _lifetime(self, cache_control: str) -> float:
        if _NO_CACHE.search(cache_control):
            return self._min_cache
        match = _MAX_AGE.search(cache_control)
        seconds = float(match.group(1)) if match else self._default_cache
        return min(max(seconds, self._min_cache), self._max_cache)

"""The `Store` protocol: the one persistence abstraction of the gateway.

Every piece of state the gateway keeps (OAuth clients, authorization transactions, codes,
refresh-token families, consents, signing keys, revocations, users' service credentials)
is an opaque value under a key in a namespace. Repositories above this layer encode,
encrypt and hash; a store only keeps bytes, forgets them when they expire, and offers the
few atomic operations an authorization server needs to stay correct under concurrency:
`add` (insert if absent), `take` (single-use codes) and `compare_and_set` (token rotation).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from typing import Any, ParamSpec, Protocol, TypeVar, runtime_checkable

from mcp_front.errors import MCPFrontError
from mcp_front.metrics import STORE_ERRORS

Clock = Callable[[], float]
"""Returns the current time in seconds; injectable so tests can move time forward."""

DEFAULT_SCAN_LIMIT = 1000
"""How many entries `scan` returns at most unless told otherwise."""


class StoreUnavailable(MCPFrontError):
    """The store's server cannot be reached, or did not answer in time.

    Whether the operation took effect is unknown: a write that must not be lost is retried
    by its caller or refused to the client. Requests that need the store answer 503.
    """


_P = ParamSpec("_P")
_T = TypeVar("_T")


def unavailable_on(
    *errors: type[BaseException], what: str
) -> Callable[[Callable[_P, Coroutine[Any, Any, _T]]], Callable[_P, Coroutine[Any, Any, _T]]]:
    """Decorate a store operation so that a driver's connection `errors` surface as
    `StoreUnavailable`, naming `what` store it was (never its URL, which may hold a password)."""

    def decorate(operation: Callable[_P, Coroutine[Any, Any, _T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
        @functools.wraps(operation)
        async def translated(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            try:
                return await operation(*args, **kwargs)
            except errors as exc:
                STORE_ERRORS.inc(what)
                raise StoreUnavailable(f"{what} is unreachable: {type(exc).__name__}") from exc

        return translated

    return decorate


@runtime_checkable
class Store(Protocol):
    """An async, namespaced key → bytes store with per-entry expiry.

    An entry whose time to live has passed is invisible to every operation at once, even
    before `purge_expired` removes it. Namespaces and keys are non-empty strings without NUL
    characters; values are bytes that the store never interprets. A store on a server
    raises `StoreUnavailable` when the server cannot be reached, and recovers by itself
    once it can.
    """

    async def get(self, namespace: str, key: str) -> bytes | None:
        """The live value under `key`, or None."""
        ...

    async def put(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> None:
        """Store `value` under `key`, replacing any previous value and expiry.

        With `ttl` None the entry never expires.
        """
        ...

    async def add(self, namespace: str, key: str, value: bytes, *, ttl: timedelta | None = None) -> bool:
        """Store `value` only if `key` has no live entry; True if it was stored."""
        ...

    async def take(self, namespace: str, key: str) -> bytes | None:
        """Remove the live entry under `key` and return its value, atomically.

        Of several concurrent takes of one entry, exactly one gets the value: this is
        what makes authorization codes single-use.
        """
        ...

    async def compare_and_set(
        self,
        namespace: str,
        key: str,
        expected: bytes | None,
        new: bytes | None,
        *,
        ttl: timedelta | None = None,
    ) -> bool:
        """Replace the live value under `key` by `new` only if it equals `expected`, atomically.

        `expected` None means the key must have no live entry; `new` None deletes the entry.
        `ttl` applies to `new`. True if the swap happened: of several concurrent swaps
        from the same expected value exactly one wins, so a refresh token rotates once.
        """
        ...

    async def delete(self, namespace: str, key: str) -> bool:
        """Remove the entry under `key`; True if a live entry was removed."""
        ...

    async def scan(
        self, namespace: str, prefix: str = "", *, limit: int = DEFAULT_SCAN_LIMIT
    ) -> list[tuple[str, bytes]]:
        """Live entries whose key starts with `prefix`, sorted by key, at most `limit` of them."""
        ...

    async def purge_expired(self) -> int:
        """Remove expired entries from the underlying storage; the number removed.

        Expired entries are already invisible; this only reclaims their space. The store's
        owner calls it periodically: no store starts a background task of its own.
        """
        ...

    async def aclose(self) -> None:
        """Release the store's resources; later operations raise RuntimeError. Idempotent."""
        ...


HEX_DIGITS = "0123456789abcdef"


async def scan_all(
    store: Store,
    namespace: str,
    prefix: str = "",
    *,
    alphabet: str = HEX_DIGITS,
    page: int = DEFAULT_SCAN_LIMIT,
) -> AsyncIterator[tuple[str, bytes]]:
    """Every live entry whose key starts with `prefix`, in key order, however many there
    are, for keys whose next characters are drawn from `alphabet` (hex digests by default):
    a full page is read again as one narrower prefix per character."""
    entries = await store.scan(namespace, prefix, limit=page)
    if len(entries) < page:
        for entry in entries:
            yield entry
        return
    for key, value in entries:
        if key == prefix:
            yield key, value
    for character in alphabet:
        async for entry in scan_all(store, namespace, prefix + character, alphabet=alphabet, page=page):
            yield entry


def check_name(what: str, name: str) -> None:
    """Refuse namespaces, keys and prefixes that not every store can hold faithfully.

    NUL terminates strings in C-backed stores, and a lone surrogate cannot be encoded as
    UTF-8, so neither may appear; keys then sort the same (by code point) in every store.
    """
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    if "\x00" in name:
        raise ValueError(f"{what} must not contain a NUL character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} must be valid Unicode (no lone surrogates)") from None


def check_entry(namespace: str, key: str) -> None:
    """Validate the address of an entry: both parts non-empty, see `check_name`."""
    for what, name in (("namespace", namespace), ("key", key)):
        check_name(what, name)
        if not name:
            raise ValueError(f"{what} must not be empty")


def check_value(what: str, value: bytes | None, *, optional: bool = False) -> None:
    """Refuse anything but bytes, so a str never gets stored with some implicit encoding."""
    if value is None and optional:
        return
    if not isinstance(value, bytes):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def check_limit(limit: int) -> None:
    """A scan returns at least one entry, so callers paginate instead of looping forever."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, not {limit!r}")


def expiry(now: float, ttl: timedelta | None) -> float | None:
    """The clock time at which an entry stored at `now` with `ttl` expires, or None."""
    if ttl is None:
        return None
    if not isinstance(ttl, timedelta):
        raise TypeError(f"ttl must be a timedelta or None, not {type(ttl).__name__}")
    seconds = ttl.total_seconds()
    if seconds <= 0:
        raise ValueError(f"ttl must be positive, not {ttl}")
    return now + seconds


def is_live(expires_at: float | None, now: float) -> bool:
    """Whether an entry expiring at `expires_at` is still visible at `now`."""
    return expires_at is None or expires_at > now

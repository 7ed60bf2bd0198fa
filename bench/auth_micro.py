"""In-process microbenchmarks of the authorization hot path, without HTTP.

`TokenIssuer.verify_access_token` (warm, cold key, never-seen tokens),
`AccessTokenVerifier.verify` with its revocation cache warm and cold, and `ResourceGuard`
in front of an ASGI app that does nothing. Each call is timed on its own with
`time.perf_counter_ns`; every loop is bounded by a count and a deadline.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bench.measure import percentile
from mcp_front.auth.bearer import AccessTokenVerifier
from mcp_front.auth.resource import OAuthResource, ResourceGuard
from mcp_front.auth.revocations import RevokedAccessTokens
from mcp_front.auth.service_auth import StaticCredentials
from mcp_front.auth.tokens import SigningKey, SigningKeys, TokenIssuer
from mcp_front.config import BearerServiceAuth
from mcp_front.storage.memory import MemoryStore

ISSUER = "http://127.0.0.1:9"
RESOURCE = f"{ISSUER}/demo"
STATIC_TOKEN = "bench-static-token"
EVICT_BYTES = 32 << 20


@dataclass(frozen=True, slots=True)
class MicroSettings:
    warm_calls: int
    """Timed calls of each warm case."""
    cold_calls: int
    """Timed calls of each cold case (each needs a fresh key, issuer or token)."""
    time_limit: float
    """Seconds after which one case stops, whatever is left."""


@dataclass(frozen=True, slots=True)
class MicroResult:
    name: str
    what: str
    calls: int
    p50_us: float
    p99_us: float
    mean_us: float
    truncated: bool


def _result(name: str, what: str, nanoseconds: list[int], truncated: bool) -> MicroResult:
    values = sorted(n / 1000 for n in nanoseconds)
    return MicroResult(
        name=name,
        what=what,
        calls=len(values),
        p50_us=percentile(values, 0.5),
        p99_us=percentile(values, 0.99),
        mean_us=sum(values) / len(values),
        truncated=truncated,
    )


def _timed(calls: int, time_limit: float, call: Callable[[int], object]) -> tuple[list[int], bool]:
    """Run `call(i)` up to `calls` times; the duration of each, and whether time ran out."""
    durations: list[int] = []
    deadline = time.monotonic() + time_limit
    clock = time.perf_counter_ns
    for index in range(calls):
        if time.monotonic() > deadline:
            return durations, True
        started = clock()
        call(index)
        durations.append(clock() - started)
    return durations, False


async def _timed_async(
    calls: int, time_limit: float, call: Callable[[int], Awaitable[object]]
) -> tuple[list[int], bool]:
    durations: list[int] = []
    deadline = time.monotonic() + time_limit
    clock = time.perf_counter_ns
    for index in range(calls):
        if time.monotonic() > deadline:
            return durations, True
        started = clock()
        await call(index)
        durations.append(clock() - started)
    return durations, False


def _issue(issuer: TokenIssuer, n: int = 0) -> str:
    return issuer.issue_access_token(
        subject=f"user-{n}",
        audience=RESOURCE,
        client_id="bench-client",
        scope=["mcp"],
        email="ada@example.com",
        extra={"groups": ["engineering"]},
    ).token


def _der_signature(segment: str) -> bytes:
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def token_verification(settings: MicroSettings) -> list[MicroResult]:
    """`TokenIssuer.verify_access_token`: warm, on a new issuer, on a key fresh from PEM, new tokens."""
    key = SigningKey.generate()
    issuer = TokenIssuer(SigningKeys(key), ISSUER)
    token = _issue(issuer)
    results = []

    def warm(_: int) -> object:
        return issuer.verify_access_token(token, audience=RESOURCE)

    for _ in range(200):
        warm(0)
    durations, truncated = _timed(settings.warm_calls, settings.time_limit, warm)
    results.append(_result("verify, warm", "same issuer, same token, key in use", durations, truncated))

    # The floor: the ES256 signature check alone, as PyJWT asks `cryptography` to do it.
    signing_input, _, signature = token.rpartition(".")
    der = _der_signature(signature)
    public_key = key.public_key
    assert isinstance(public_key, ec.EllipticCurvePublicKey)

    def signature_only(_: int) -> object:
        public_key.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        return None

    durations, truncated = _timed(settings.warm_calls, settings.time_limit, signature_only)
    results.append(
        _result(
            "ES256 signature check alone",
            "cryptography's ECDSA P-256 verify of the same token: the floor under every verification",
            durations,
            truncated,
        )
    )

    tokens = [_issue(issuer, n) for n in range(settings.warm_calls)]

    def never_seen(index: int) -> object:
        return issuer.verify_access_token(tokens[index], audience=RESOURCE)

    durations, truncated = _timed(len(tokens), settings.time_limit, never_seen)
    results.append(
        _result("verify, never-seen token", "same issuer, a different token each call", durations, truncated)
    )

    # In a server the verification runs between other work, not in a hot loop: evict the CPU
    # caches (copy a buffer larger than them) before each call, outside the timed part.
    evictor = bytearray(EVICT_BYTES)
    durations_cache_cold: list[int] = []
    deadline = time.monotonic() + settings.time_limit
    truncated = False
    for index in range(settings.cold_calls):
        if time.monotonic() > deadline:
            truncated = True
            break
        evictor[index % EVICT_BYTES] ^= 1
        bytes(evictor)
        started = time.perf_counter_ns()
        issuer.verify_access_token(token, audience=RESOURCE)
        durations_cache_cold.append(time.perf_counter_ns() - started)
    results.append(
        _result(
            "verify, CPU caches cold",
            f"same issuer and token, {EVICT_BYTES >> 20} MiB copied before each call to evict the caches",
            durations_cache_cold,
            truncated,
        )
    )

    pem = key.to_pem()
    fresh_issuers: list[TokenIssuer] = []
    durations_new_issuer: list[int] = []
    clock = time.perf_counter_ns

    def new_issuer(_: int) -> object:
        started = clock()
        fresh = TokenIssuer(SigningKeys(SigningKey.from_pem(pem)), ISSUER)
        durations_new_issuer.append(clock() - started)
        fresh_issuers.append(fresh)
        return fresh

    # Load the keys untimed by `_timed` (their cost is reported on its own), then time each
    # issuer's first verification.
    _, truncated_load = _timed(settings.cold_calls, settings.time_limit, new_issuer)

    def first_verification(index: int) -> object:
        return fresh_issuers[index].verify_access_token(token, audience=RESOURCE)

    durations, truncated = _timed(len(fresh_issuers), settings.time_limit, first_verification)
    results.append(
        _result(
            "verify, cold key",
            "first verification by a new issuer whose key was just loaded from PEM",
            durations,
            truncated,
        )
    )
    results.append(
        _result(
            "load key and build issuer",
            "SigningKey.from_pem + TokenIssuer(…), once per key at start-up",
            durations_new_issuer,
            truncated_load,
        )
    )
    return results


async def verifier_cache(settings: MicroSettings) -> list[MicroResult]:
    """`AccessTokenVerifier.verify` with a MemoryStore-backed revocation list, cache warm and cold."""
    issuer = TokenIssuer(SigningKeys(SigningKey.generate()), ISSUER)
    store = MemoryStore()
    revoked = RevokedAccessTokens(store)
    await revoked.revoke("some-other-token", time.time() + 3600)
    verifier = AccessTokenVerifier(issuer, is_revoked=revoked.is_revoked, revocation_cache_seconds=3600)
    token = _issue(issuer)
    results = []

    async def warm(_: int) -> object:
        principal = await verifier.verify(token, RESOURCE)
        if principal is None:
            raise RuntimeError("the benchmark token was refused")
        return principal

    for _ in range(200):
        await warm(0)
    durations, truncated = await _timed_async(settings.warm_calls, settings.time_limit, warm)
    results.append(
        _result("verifier, revocation cache warm", "same token: jti answer cached", durations, truncated)
    )

    tokens = [_issue(issuer, n) for n in range(settings.warm_calls)]

    async def cold(index: int) -> object:
        return await verifier.verify(tokens[index], RESOURCE)

    durations, truncated = await _timed_async(len(tokens), settings.time_limit, cold)
    results.append(
        _result(
            "verifier, revocation cache cold",
            "a new token each call: JWT verified, jti read from the MemoryStore",
            durations,
            truncated,
        )
    )
    await store.aclose()
    return results


async def _nothing(scope: Any, receive: Any, send: Any) -> None:
    return None


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    return None


def _scope(authorization: str | None) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1:9"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"mcp-session-id", b"0123456789abcdef0123456789abcdef"),
        (b"mcp-protocol-version", b"2025-06-18"),
    ]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    return {
        "type": "http",
        "method": "POST",
        "path": "/demo/mcp",
        "root_path": "",
        "headers": headers,
        "query_string": b"",
    }


async def resource_guard(settings: MicroSettings) -> list[MicroResult]:
    """`ResourceGuard` over an app that does nothing: its own cost per request, by kind of auth."""
    issuer = TokenIssuer(SigningKeys(SigningKey.generate()), ISSUER)
    store = MemoryStore()
    revoked = RevokedAccessTokens(store)
    verifier = AccessTokenVerifier(issuer, is_revoked=revoked.is_revoked)
    oauth = OAuthResource(
        resource=RESOURCE,
        metadata_url=f"{ISSUER}/.well-known/oauth-protected-resource/demo",
        verifier=verifier,
    )
    static = StaticCredentials("demo", [BearerServiceAuth(tokens=[STATIC_TOKEN], user="ci@example.com")])
    token = _issue(issuer)
    cases: list[tuple[str, str, Any, str | None]] = [
        ("no guard", "the app called directly", _nothing, None),
        (
            "guard, anonymous service",
            "no serviceAuths, no OAuth",
            ResourceGuard(_nothing, service="demo", credentials=None),
            None,
        ),
        (
            "guard, static bearer",
            "serviceAuths bearer token (one SHA-256, constant-time compare)",
            ResourceGuard(_nothing, service="demo", credentials=static),
            f"Bearer {STATIC_TOKEN}",
        ),
        (
            "guard, OAuth access token",
            "JWT verified (ES256), revocation cache warm",
            ResourceGuard(_nothing, service="demo", credentials=None, oauth=oauth),
            f"Bearer {token}",
        ),
        (
            "guard, OAuth token, service with both",
            "serviceAuths tried first, then the JWT",
            ResourceGuard(_nothing, service="demo", credentials=static, oauth=oauth),
            f"Bearer {token}",
        ),
    ]
    samples: dict[str, list[int]] = {name: [] for name, *_ in cases}
    truncated = False
    rounds = 5
    per_round = max(1, settings.warm_calls // rounds)
    for _ in range(20):
        for _name, _what, app, authorization in cases:
            await app(_scope(authorization), _receive, _send)
    # Interleaved rounds, so a drift of the machine's speed touches every case alike.
    for _ in range(rounds):
        for name, _what, app, authorization in cases:
            template = _scope(authorization)
            scopes = [dict(template) for _ in range(per_round)]

            async def call(index: int, app: Any = app, scopes: list[dict[str, Any]] = scopes) -> None:
                await app(scopes[index], _receive, _send)

            durations, cut = await _timed_async(per_round, settings.time_limit / rounds, call)
            samples[name] += durations
            truncated = truncated or cut
    for name, *_ in cases:
        if not samples[name]:
            raise RuntimeError(f"no sample for {name}")
    await store.aclose()
    return [_result(name, what, samples[name], truncated) for name, what, *_ in cases]

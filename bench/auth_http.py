"""The gateways the authorization benchmark runs, and how it signs in and refreshes.

Sign-in is the real authorization code flow: dynamic registration of a public client,
`/authorize` with PKCE and an RFC 8707 resource, the identity provider (npm
`oidc-provider`, run by `tests/node/oidc_provider.mjs`, which signs its test user in at
once), the gateway's consent page, then `/token`. Each sign-in starts a refresh-token
family of its own.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import anyio
import httpx2

from bench.clients import CALL_TIMEOUT
from bench.processes import BenchError
from bench.targets import DEMO_SERVER, ROOT, UNREACHED_LIMITS

OIDC_SCRIPT = ROOT / "tests" / "node" / "oidc_provider.mjs"
CLIENT_REDIRECT = "http://127.0.0.1:3999/callback"
STATIC_TOKEN = "bench-static-token"
OAUTH_SERVICE = "demo-oauth"
STATIC_SERVICE = "demo-static"
ANONYMOUS_SERVICE = "demo-anon"
MAX_HOPS = 15
USER = {
    "sub": "bench-user",
    "email": "ada@example.com",
    "email_verified": True,
    "name": "Ada Lovelace",
    "groups": ["engineering"],
    "hd": "example.com",
}
IDP_CLIENT = ("gateway-bench", "bench-idp-secret-5c1e")


def node_binary() -> str | None:
    return shutil.which("node")


def oidc_env(port: int, redirect_uris: list[str]) -> dict[str, str]:
    """The environment that configures `oidc_provider.mjs` on `port` for these gateway callbacks."""
    config = {
        "port": port,
        "issuer": f"http://127.0.0.1:{port}",
        "clients": [
            {
                "client_id": IDP_CLIENT[0],
                "client_secret": IDP_CLIENT[1],
                "redirect_uris": redirect_uris,
                "token_endpoint_auth_method": "client_secret_basic",
            }
        ],
        "user": USER,
        "deny": False,
    }
    return {"OIDC_TEST_CONFIG": json.dumps(config), "NO_COLOR": "1"}


def _service(static_token: bool) -> dict[str, Any]:
    service: dict[str, Any] = {
        "transportType": "stdio",
        "command": sys.executable,
        "args": [str(DEMO_SERVER)],
    }
    if static_token:
        service["serviceAuths"] = [{"type": "bearer", "tokens": [STATIC_TOKEN], "user": "ci@example.com"}]
    return service


def gateway_config(port: int, *, storage: dict[str, str] | None, oidc_port: int | None) -> dict[str, Any]:
    """`storage` and `oidc_port` given: OAuth on, services `demo-oauth` and `demo-static`.

    Otherwise no auth block, services `demo-anon` (anonymous) and `demo-static`. The static bearer
    token is the same in both, so the `demo-static` rows of the two processes can be compared.
    """
    url = f"http://127.0.0.1:{port}"
    config: dict[str, Any] = {
        "version": "v0.0.1-DEV_EDITION_EXPECT_CHANGES",
        "proxy": {
            "baseURL": url,
            "addr": f"127.0.0.1:{port}",
            "name": "mcp-front bench",
            "sessions": {"maxPerUser": 200, "maxProcesses": 300},
            # Counted as always (with a shared store, in the store), never reached: the
            # benchmark measures how fast grants are, not the limit.
            "rateLimits": {"token": {"requests": 1_000_000, "per": "1m"}, **UNREACHED_LIMITS},
        },
    }
    if storage is None or oidc_port is None:
        config["mcpServers"] = {ANONYMOUS_SERVICE: _service(False), STATIC_SERVICE: _service(True)}
        return config
    config["mcpServers"] = {OAUTH_SERVICE: _service(False), STATIC_SERVICE: _service(True)}
    config["proxy"]["auth"] = {
        "kind": "oauth",
        "issuer": url,
        "idp": {
            "provider": "oidc",
            "clientId": IDP_CLIENT[0],
            "clientSecret": IDP_CLIENT[1],
            "redirectUri": f"{url}/oauth/callback",
            "discoveryUrl": f"http://127.0.0.1:{oidc_port}/.well-known/openid-configuration",
        },
        "allowedDomains": ["example.com"],
        "jwtSecret": "bench-jwt-secret-" + "j" * 32,
        "encryptionKey": "k" * 32,
        "storage": storage,
    }
    return config


def write_config(directory: Path, name: str, config: dict[str, Any]) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def register_client(base_url: str) -> str:
    """Register a public client (no secret) for the authorization code and refresh grants."""
    metadata = {
        "client_name": "mcp-front bench",
        "redirect_uris": [CLIENT_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    async with httpx2.AsyncClient(timeout=CALL_TIMEOUT) as http:
        response = await http.post(f"{base_url}/register", json=metadata)
    if response.status_code != 201:
        raise BenchError(f"registration failed: {response.status_code} {response.text[:300]}")
    client_id: str = response.json()["client_id"]
    return client_id


async def sign_in(base_url: str, client_id: str, service: str) -> Tokens:
    """The authorization code flow for `service`, the browser leg included; its tokens."""
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    resource = f"{base_url}/{service}"
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CLIENT_REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "resource": resource,
            "scope": "mcp",
        }
    )
    result = await _browser(f"{base_url}/authorize?{query}")
    if result.get("state") != state or "code" not in result:
        raise BenchError(f"the sign-in did not return a code: {result}")
    async with httpx2.AsyncClient(timeout=CALL_TIMEOUT) as http:
        response = await http.post(
            f"{base_url}/token",
            data={
                "grant_type": "authorization_code",
                "code": result["code"],
                "redirect_uri": CLIENT_REDIRECT,
                "client_id": client_id,
                "code_verifier": verifier,
                "resource": resource,
            },
        )
    if response.status_code != 200:
        raise BenchError(f"code exchange failed: {response.status_code} {response.text[:300]}")
    body = response.json()
    return Tokens(body["access_token"], body["refresh_token"])


async def _browser(authorization_url: str) -> dict[str, str]:
    """Follow redirects, the provider's sign-in and the consent page, as a browser would."""
    async with httpx2.AsyncClient(timeout=CALL_TIMEOUT) as browser:
        url = authorization_url
        for _ in range(MAX_HOPS):
            response = await browser.get(url)
            if response.status_code == 200 and "<form" in response.text:
                response = await _approve(browser, url, response.text)
            location = response.headers.get("location")
            if not response.is_redirect or not location:
                raise BenchError(f"sign-in stopped: {response.status_code} at {url}: {response.text[:300]}")
            url = urljoin(url, location)
            if url.startswith(CLIENT_REDIRECT):
                return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    raise BenchError(f"the sign-in never came back to the client after {MAX_HOPS} hops")


async def _approve(browser: httpx2.AsyncClient, page_url: str, page: str) -> httpx2.Response:
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    if action is None:
        raise BenchError("the consent page has no form")
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }
    return await browser.post(
        urljoin(page_url, html.unescape(action[1])), data={**fields, "decision": "approve"}
    )


@dataclass(frozen=True, slots=True)
class RefreshSample:
    latencies: list[float]
    """Seconds per timed `/token` request."""
    seconds: float
    truncated: bool


async def refresh_load(
    base_url: str, client_id: str, refresh_tokens: list[str], calls: int, warmup: int, time_limit: float
) -> tuple[RefreshSample, list[str]]:
    """One worker per refresh token, each rotating its own family one request at a time.

    Rotation invalidates the token used, so a worker always sends the one it got last.
    Returns the sample and each family's current token, for the next round.
    """
    concurrency = len(refresh_tokens)
    current = list(refresh_tokens)
    latencies: list[float] = []
    remaining = calls
    finished: list[float] = []
    truncated = False
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(CALL_TIMEOUT)) as http:

        async def refresh(index: int) -> None:
            response = await http.post(
                f"{base_url}/token",
                data={"grant_type": "refresh_token", "refresh_token": current[index], "client_id": client_id},
            )
            if response.status_code != 200:
                raise BenchError(f"refresh failed: {response.status_code} {response.text[:300]}")
            current[index] = response.json()["refresh_token"]

        async def warm(index: int) -> None:
            for _ in range(warmup):
                with anyio.fail_after(CALL_TIMEOUT):
                    await refresh(index)

        async with anyio.create_task_group() as group:
            for index in range(concurrency):
                group.start_soon(warm, index)

        started = time.perf_counter()
        deadline = started + time_limit

        async def worker(index: int) -> None:
            nonlocal remaining, truncated
            while remaining > 0:
                if time.perf_counter() > deadline:
                    truncated = True
                    break
                remaining -= 1
                begun = time.perf_counter()
                with anyio.fail_after(CALL_TIMEOUT):
                    await refresh(index)
                latencies.append(time.perf_counter() - begun)
            finished.append(time.perf_counter())

        async with anyio.create_task_group() as group:
            for index in range(concurrency):
                group.start_soon(worker, index)
    return RefreshSample(latencies, max(finished) - started, truncated), current

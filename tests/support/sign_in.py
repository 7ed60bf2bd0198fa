"""An OAuth client done by hand against a real gateway: registration, the browser's part of
the sign-in (the identity provider's login, the consent page), and the token endpoint.

Black-box tests of the authorization server use it where the SDK's client would hide
what they look at (pages, headers, error bodies).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2

from tests.support.oidc import consent_form

LOOPBACK_REDIRECT = "http://127.0.0.1:3999/callback"


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


async def register(gateway: str, **metadata: Any) -> httpx2.Response:
    """POST a registration: a public loopback client unless `metadata` says otherwise."""
    body = {
        "client_name": "hardening test client",
        "redirect_uris": [LOOPBACK_REDIRECT],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(f"{gateway}/register", json=body)


@dataclass
class Browser:
    """Follows redirects as a browser does, with its cookies, approving consent pages."""

    http: httpx2.AsyncClient = field(default_factory=lambda: httpx2.AsyncClient(timeout=30))
    pages: list[str] = field(default_factory=list)

    async def follow(self, url: str, *, until: str, approve: bool = True) -> str:
        """Open `url` and go on until a redirect to a URL starting with `until`; that URL."""
        for _ in range(15):
            response = await self.http.get(url)
            if response.status_code == 200 and "<form" in response.text:
                self.pages.append(response.text)
                action, fields = consent_form(response.text)
                decision = "approve" if approve else "deny"
                response = await self.http.post(urljoin(url, action), data={**fields, "decision": decision})
            assert response.is_redirect, f"{response.status_code} at {url}: {response.text[:400]}"
            url = urljoin(url, response.headers["location"])
            if url.startswith(until):
                return url
        raise AssertionError(f"no redirect to {until}")

    async def aclose(self) -> None:
        await self.http.aclose()


async def sign_in(
    gateway: str,
    client_id: str,
    resource: str,
    *,
    redirect_uri: str = LOOPBACK_REDIRECT,
    scope: str | None = None,
) -> dict[str, Any]:
    """The whole authorization code flow for a public client; the token response."""
    verifier, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": "s-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": resource,
        **({"scope": scope} if scope else {}),
    }
    browser = Browser()
    try:
        authorize = str(httpx2.URL(f"{gateway}/authorize", params=params))
        back = query_of(await browser.follow(authorize, until=redirect_uri))
    finally:
        await browser.aclose()
    assert "code" in back, back
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{gateway}/token",
            data={
                "grant_type": "authorization_code",
                "code": back["code"],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
                "client_id": client_id,
                "resource": resource,
            },
        )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens

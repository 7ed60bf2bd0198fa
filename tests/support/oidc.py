"""A real OpenID Provider (npm `oidc-provider`, run by `tests/node/oidc_provider.mjs`) on a loopback port.

Its interaction route signs the test user in and consents at once, so `browser_login()`
can follow the authorization code flow with a plain HTTP client and its cookie jar, as a
browser would, up to the redirect back to the gateway.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
import pytest

from tests.servers.conformance import NODE_PROJECT, running_server
from tests.support.net import free_port

OIDC_SCRIPT = NODE_PROJECT / "oidc_provider.mjs"
REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"
MAX_HOPS = 12

TEST_USER: dict[str, Any] = {
    "sub": "user-4711",
    "email": "ada@example.com",
    "email_verified": True,
    "name": "Ada Lovelace",
    "groups": ["engineering", "admins"],
    "hd": "example.com",
}


OTHER_USER: dict[str, Any] = {
    "sub": "user-1815",
    "email": "grace@example.com",
    "email_verified": True,
    "name": "Grace Hopper",
    "groups": ["engineering"],
    "hd": "example.com",
}
"""A second user, signed in after `OIDCServer.sign_in_as` names them."""


@dataclass(frozen=True)
class OIDCServer:
    """The running provider: its issuer and the two registered clients."""

    issuer: str
    basic_client: tuple[str, str]
    post_client: tuple[str, str]

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def authorization_url(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    @property
    def revocation_url(self) -> str:
        return f"{self.issuer}/token/revocation"

    async def stats(self) -> dict[str, int]:
        """As a service's provider: token requests by grant type, and revocations."""
        async with httpx2.AsyncClient(timeout=10.0) as http:
            response = await http.get(f"{self.issuer}/test/stats")
            response.raise_for_status()
            counts: dict[str, int] = response.json()
            return counts

    async def sign_in_as(self, user: dict[str, Any]) -> None:
        """Make the provider's next logins those of `user` (`TEST_USER` or `OTHER_USER`)."""
        async with httpx2.AsyncClient(timeout=10.0) as http:
            response = await http.get(f"{self.issuer}/test/sign-in-as", params={"sub": user["sub"]})
            response.raise_for_status()


def _clients(redirect_uris: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "client_id": "gateway-basic",
            "client_secret": "basic-secret-3f9a1c",
            "redirect_uris": list(redirect_uris),
            "token_endpoint_auth_method": "client_secret_basic",
        },
        {
            "client_id": "gateway-post",
            "client_secret": "post-secret-77d0e2",
            "redirect_uris": list(redirect_uris),
            "token_endpoint_auth_method": "client_secret_post",
        },
    ]


@contextmanager
def oidc_provider_process(
    *,
    deny: bool = False,
    redirect_uris: Sequence[str] = (REDIRECT_URI,),
    service: bool = False,
    access_token_ttl: int = 3600,
) -> Iterator[OIDCServer]:
    """Start `oidc_provider.mjs` on a free port with the system Node.js, and stop it on exit.

    With `service`, it plays a service's OAuth provider: refresh tokens on every grant,
    rotated on use, access tokens living `access_token_ttl` seconds, and revocation."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not installed: the identity-provider tests need it (apt-get install nodejs)")
    for attempt in range(STARTS):
        stack = ExitStack()
        try:
            server = stack.enter_context(
                _started(node, redirect_uris, deny=deny, service=service, access_token_ttl=access_token_ttl)
            )
        except RuntimeError:
            # A free port can be taken by another process before the provider binds it.
            if attempt == STARTS - 1:
                raise
            continue
        with stack:
            yield server
        return


STARTS = 2


@contextmanager
def _started(
    node: str, redirect_uris: Sequence[str], *, deny: bool, service: bool, access_token_ttl: int
) -> Iterator[OIDCServer]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    clients = _clients(redirect_uris)
    config = {
        "port": port,
        "issuer": issuer,
        "clients": clients,
        "user": TEST_USER,
        "users": [OTHER_USER],
        "deny": deny,
        "service": service,
        "accessTokenTtl": access_token_ttl,
    }
    env = dict(os.environ, OIDC_TEST_CONFIG=json.dumps(config), NO_COLOR="1")
    with running_server([node, str(OIDC_SCRIPT)], port=port, url=issuer, env=env, startup_timeout=60.0):
        yield OIDCServer(
            issuer=issuer,
            basic_client=(clients[0]["client_id"], clients[0]["client_secret"]),
            post_client=(clients[1]["client_id"], clients[1]["client_secret"]),
        )


async def browser_login(authorization_url: str, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    """Follow the login like a browser up to the redirect to `redirect_uri`; its query parameters."""
    async with httpx2.AsyncClient(timeout=10.0) as browser:
        url = authorization_url
        for _ in range(MAX_HOPS):
            response = await browser.get(url)
            location = response.headers.get("location")
            assert response.is_redirect, f"{response.status_code} at {url}: {response.text[:500]}"
            assert location, f"{response.status_code} at {url}: {response.text[:500]}"
            url = urljoin(url, location)
            if url.startswith(redirect_uri):
                return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    raise AssertionError(f"no redirect to {redirect_uri} after {MAX_HOPS} hops")


def gateway_auth_config(gateway_url: str, oidc: OIDCServer, **extra: Any) -> dict[str, Any]:
    """A `proxy.auth` block signing in through `oidc`, for a gateway at `gateway_url`."""
    client_id, client_secret = oidc.basic_client
    return {
        "kind": "oauth",
        "issuer": gateway_url,
        "idp": {
            "provider": "oidc",
            "clientId": client_id,
            "clientSecret": client_secret,
            "redirectUri": f"{gateway_url}/oauth/callback",
            "discoveryUrl": oidc.discovery_url,
        },
        "allowedDomains": ["example.com"],
        "encryptionKey": "k" * 32,
        "storage": "memory",
        **extra,
    }


def consent_form(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the gateway's consent page."""
    form = re.search(r'<form method="post" action="([^"]+)"', page)
    if form is None:
        raise AssertionError(f"no consent form in the page: {page[:400]}")
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return html.unescape(form[1]), {name: html.unescape(value) for name, value in fields.items()}

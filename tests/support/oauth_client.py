"""The SDK's `OAuthClientProvider` signing in through a gateway as a person would: a
browser that follows redirects, signs in at the test identity provider and approves the
consent page, and token storage in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.oauth2 import AuthorizationCodeResult
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.support.oidc import consent_form

CLIENT_REDIRECT = "http://127.0.0.1:3999/callback"


@dataclass
class Browser:
    """Follows the sign-in like a person would: redirects, the provider's login, the consent page."""

    approvals: int = 0
    result: dict[str, str] = field(default_factory=dict)
    pages: list[str] = field(default_factory=list)

    async def visit(self, authorization_url: str) -> None:
        async with httpx2.AsyncClient(timeout=15.0) as browser:
            url = authorization_url
            for _ in range(15):
                response = await browser.get(url)
                if response.status_code == 200 and "<form" in response.text:
                    response = await self._approve(browser, url, response.text)
                assert response.is_redirect, f"{response.status_code} at {url}: {response.text[:400]}"
                url = urljoin(url, response.headers["location"])
                if url.startswith(CLIENT_REDIRECT):
                    self.result = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
                    return
        raise AssertionError("the sign-in never came back to the client")

    async def _approve(self, browser: httpx2.AsyncClient, page_url: str, page: str) -> httpx2.Response:
        self.approvals += 1
        self.pages.append(page)
        assert "ada@example.com" in page
        action, fields = consent_form(page)
        return await browser.post(urljoin(page_url, action), data={**fields, "decision": "approve"})


class MemoryTokens:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def oauth(
    server_url: str, storage: MemoryTokens, browser: Browser, *, metadata_url: str | None = None
) -> OAuthClientProvider:
    async def callback() -> AuthorizationCodeResult:
        result = browser.result
        return AuthorizationCodeResult(code=result["code"], state=result.get("state"), iss=result.get("iss"))

    metadata = OAuthClientMetadata.model_validate(
        {
            "client_name": "e2e test client",
            "redirect_uris": [CLIENT_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
    )
    return OAuthClientProvider(
        server_url=server_url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=browser.visit,
        callback_handler=callback,
        client_metadata_url=metadata_url,
    )

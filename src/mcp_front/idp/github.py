"""GitHub sign-in: OAuth 2.0 without ID tokens, the user read from the REST API.

GitHub vouches for a user through its API rather than a signed token: `/user` gives the
stable numeric id, `/user/emails` the primary email and whether it is verified, and
`/user/orgs` plus `/user/teams` the memberships that access policies match on. Lists are
paginated with `Link: <…>; rel="next"`; following them is bounded, and only to the API's
own origin, since each request carries the user's token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

import httpx2

from mcp_front.idp import _http
from mcp_front.idp.base import Identity, IdentityProvider, IdentityProviderError
from mcp_front.idp.pkce import s256_challenge

EXCHANGE_URL: Final = "https://github.com/login/oauth/access_token"
DEFAULT_SCOPES: Final = ("read:user", "user:email", "read:org")
MAX_PAGES: Final = 20
"""Pages followed per list: 2,000 organisations or teams at 100 a page."""

_PAGE_SIZE: Final = "100"
_NEXT_LINK: Final = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class GitHubProvider(IdentityProvider):
    """GitHub (or GitHub Enterprise Server, by pointing the three URLs at it) as the identity provider."""

    name: str = "github"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        api_url: str = "https://api.github.com",
        authorize_url: str = "https://github.com/login/oauth/authorize",
        token_url: str = EXCHANGE_URL,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        http: httpx2.AsyncClient | None = None,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.api_url = api_url.rstrip("/")
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.scopes = tuple(scopes)
        self._owns_http = http is None
        self._http = http or _http.new_client()

    def __repr__(self) -> str:
        return f"GitHubProvider(client_id={self.client_id!r}, api_url={self.api_url!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this provider made it."""
        if self._owns_http:
            await self._http.aclose()

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        """GitHub's authorize URL with PKCE (S256); GitHub issues no ID token, so `nonce` is unused."""
        params = {
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
            "code_challenge": s256_challenge(code_verifier),
            "code_challenge_method": "S256",
            "allow_signup": "false",
        }
        return f"{self.authorize_url}?{urlencode(params, quote_via=quote)}"

    async def complete(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
        """Exchange the code, then read the user, their emails, organisations and teams."""
        token = await self._exchange(code, redirect_uri, code_verifier)
        user = await self._get_object("/user", token, what="user profile")
        user_id = user.get("id")
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            raise IdentityProviderError("provider_error", "GitHub did not say who signed in (no user id)")
        emails = await self._get_list("/user/emails", token, what="email addresses")
        orgs = await self._get_list("/user/orgs", token, what="organisations")
        teams = await self._get_list("/user/teams", token, what="teams")
        primary = next((entry for entry in emails if entry.get("primary") is True), None)
        login = user.get("login") if isinstance(user.get("login"), str) else None
        name = user.get("name") if isinstance(user.get("name"), str) and user.get("name") else login
        return Identity(
            subject=str(user_id),
            email=primary.get("email") if primary and isinstance(primary.get("email"), str) else None,
            email_verified=bool(primary and primary.get("verified") is True),
            name=name,
            orgs=frozenset(_org_names(orgs) + _team_names(teams)),
            claims=user,
        )

    async def _exchange(self, code: str, redirect_uri: str, code_verifier: str) -> str:
        data = {
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        response = await _http.send(
            self._http,
            "POST",
            self.token_url,
            what="code exchange",
            headers={"Accept": "application/json"},
            data=data,
        )
        body = _http.json_object(response, what="code exchange", kind="exchange_failed")
        # GitHub reports a bad code or secret with HTTP 200 and an `error` field.
        if "error" in body:
            raise IdentityProviderError(
                "exchange_failed", f"GitHub refused the code exchange{_http.describe_oauth_error(body)}"
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise IdentityProviderError("exchange_failed", "GitHub returned no access token")
        return token

    async def _get(self, url: str, token: str, *, what: str) -> httpx2.Response:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        response = await _http.send(self._http, "GET", url, what=f"{what} request", headers=headers)
        if response.status_code in {401, 403}:
            raise IdentityProviderError(
                "provider_error",
                f"GitHub refused to share the {what} (HTTP {response.status_code}); "
                f"the app needs the scopes {' '.join(self.scopes)}",
            )
        return response

    async def _get_object(self, path: str, token: str, *, what: str) -> dict[str, Any]:
        response = await self._get(f"{self.api_url}{path}", token, what=what)
        return _http.json_object(response, what=what)

    async def _get_list(self, path: str, token: str, *, what: str) -> list[dict[str, Any]]:
        """Every item of a paginated list, following `rel="next"` up to `MAX_PAGES` pages."""
        items: list[dict[str, Any]] = []
        url: str | None = f"{self.api_url}{path}?{urlencode({'per_page': _PAGE_SIZE})}"
        for _ in range(MAX_PAGES):
            if url is None:
                return items
            response = await self._get(url, token, what=what)
            if response.status_code >= 400:
                _http.json_object(response, what=what)  # raises with the status
            try:
                page = response.json()
            except ValueError:
                page = None
            if not isinstance(page, list):
                raise IdentityProviderError("provider_error", f"GitHub's {what} answer is not a list")
            items.extend(item for item in page if isinstance(item, dict))
            url = self._next_page(response)
        if url is not None:
            raise IdentityProviderError(
                "provider_error",
                f"GitHub's {what} list is longer than {MAX_PAGES} pages; not reading further",
            )
        return items

    def _next_page(self, response: httpx2.Response) -> str | None:
        match = _NEXT_LINK.search(response.headers.get("link", ""))
        if match is None:
            return None
        url = match.group(1)
        if urlsplit(url)[:2] != urlsplit(self.api_url)[:2]:
            raise IdentityProviderError("provider_error", "GitHub's next page link points outside its API")
        return url


def _org_names(orgs: list[dict[str, Any]]) -> list[str]:
    return [org["login"] for org in orgs if isinstance(org.get("login"), str)]


def _team_names(teams: list[dict[str, Any]]) -> list[str]:
    """`org/team-slug` for each team, the form GitHub itself uses to mention teams."""
    names = []
    for team in teams:
        org = team.get("organization")
        slug = team.get("slug")
        if isinstance(org, dict) and isinstance(org.get("login"), str) and isinstance(slug, str):
            names.append(f"{org['login']}/{slug}")
    return names

"""A small GitHub look-alike on a loopback port: OAuth with PKCE, and the REST API's user endpoints.

It speaks GitHub's protocol where `GitHubProvider` depends on it: errors from the token
endpoint come back as HTTP 200 with an `error` field, the API wants the bearer token, and
lists are paginated with `Link: <…>; rel="next"`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp_front.idp.pkce import s256_challenge
from tests.support.net import free_port

CLIENT_ID = "Iv1.fakegithubclient"
CLIENT_SECRET = "fake-github-secret-5e1f"
ORGS = ["acme", "acme-labs", "widgets", "open-source", "partners"]
TEAMS = [
    ("acme", "platform"),
    ("acme", "security"),
    ("widgets", "core"),
    ("partners", "liaisons"),
    ("acme", "sre"),
]


@dataclass
class FakeGitHub:
    """What the fake serves; `url` is set once it listens."""

    email_verified: bool = True
    page_size: int = 2
    endless_orgs: bool = False
    foreign_next_link: bool = False
    url: str = ""
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    api_requests: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/login/oauth/authorize", self.authorize),
                Route("/login/oauth/access_token", self.access_token, methods=["POST"]),
                Route("/api/user", self.user),
                Route("/api/user/emails", self.emails),
                Route("/api/user/orgs", self.orgs),
                Route("/api/user/teams", self.teams),
            ]
        )

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "bad request"}, status_code=400)
        code = secrets.token_hex(10)
        self.codes[code] = (query["code_challenge"], query["redirect_uri"])
        target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return RedirectResponse(target, status_code=302)

    async def access_token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "incorrect_client_credentials", "error_description": "bad client"})
        challenge, redirect_uri = self.codes.pop(str(form.get("code")), ("", ""))
        verifier = str(form.get("code_verifier", ""))
        if not challenge or redirect_uri != form.get("redirect_uri") or s256_challenge(verifier) != challenge:
            return JSONResponse(
                {
                    "error": "bad_verification_code",
                    "error_description": "The code passed is incorrect or expired.",
                }
            )
        token = f"gho_{secrets.token_hex(16)}"
        self.tokens.add(token)
        return JSONResponse({"access_token": token, "token_type": "bearer", "scope": "read:org,user:email"})

    def _authorized(self, request: Request) -> bool:
        self.api_requests.append(str(request.url))
        header = request.headers.get("authorization", "")
        return header.removeprefix("Bearer ") in self.tokens

    async def user(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse({"id": 583231, "login": "octocat", "name": "The Octocat", "type": "User"})

    async def emails(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(
            [
                {"email": "octo@old.example", "primary": False, "verified": True, "visibility": None},
                {"email": "octocat@acme.example", "primary": True, "verified": self.email_verified},
            ]
        )

    async def orgs(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        items = [{"login": name, "id": index} for index, name in enumerate(ORGS)]
        return self._page(request, items, endless=self.endless_orgs)

    async def teams(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        items = [{"slug": slug, "organization": {"login": org}} for org, slug in TEAMS]
        return self._page(request, items)

    def _page(self, request: Request, items: list[dict[str, Any]], *, endless: bool = False) -> Response:
        page = int(request.query_params.get("page", "1"))
        chunk = items[(page - 1) * self.page_size : page * self.page_size]
        headers = {}
        if endless or page * self.page_size < len(items):
            base = "http://elsewhere.invalid" if self.foreign_next_link else self.url
            query = urlencode({"per_page": request.query_params.get("per_page", "30"), "page": page + 1})
            headers["Link"] = (
                f'<{base}{request.url.path}?{query}>; rel="next", <{base}/x?page=1>; rel="first"'
            )
        return JSONResponse(chunk if not endless else items[:1], headers=headers)


@asynccontextmanager
async def running_fake_github(fake: FakeGitHub) -> AsyncIterator[FakeGitHub]:
    """Serve `fake` with uvicorn on a free loopback port for the duration of the block."""
    port = free_port()
    fake.url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.02)
        try:
            yield fake
        finally:
            server.should_exit = True

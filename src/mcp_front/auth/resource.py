"""`ResourceGuard`: the resource-server side of every `/<service>/…` route.

It decides the `Principal` once, puts it in `scope["user"]`, and answers every
unauthenticated request with an RFC 6750 challenge instead of passing it on.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.auth.principal import ANONYMOUS, Principal
from mcp_front.auth.service_auth import StaticCredentials


class ResourceGuard:
    """ASGI middleware admitting only authenticated callers to one service."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        credentials: StaticCredentials | None,
        realm: str = "mcp-front",
    ) -> None:
        self.app = app
        self.service = service
        self._credentials = credentials
        self._realm = realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["mcp_front.service"] = self.service
        principal = self.authenticate(Headers(scope=scope))
        if principal is None:
            await self._challenge(scope, send)
            return
        scope["user"] = principal
        await self.app(scope, receive, send)

    def authenticate(self, headers: Headers) -> Principal | None:
        if self._credentials is None:
            return ANONYMOUS
        return self._credentials.authenticate(headers.get("authorization"))

    async def _challenge(self, scope: Scope, send: Send) -> None:
        sent_credentials = "authorization" in Headers(scope=scope)
        assert self._credentials is not None
        challenges = []
        for scheme in self._credentials.schemes:
            params = [f'realm="{self._realm}"']
            if sent_credentials and scheme == "Bearer":
                params.append('error="invalid_token"')
                params.append('error_description="The access token is invalid"')
            challenges.append(f"{scheme} {', '.join(params)}")
        if sent_credentials:
            body = {
                "error": "invalid_token",
                "error_description": "The credentials are not valid for this service",
            }
        else:
            body = {
                "error": "unauthorized",
                "error_description": f"Service '{self.service}' requires credentials "
                f"({' or '.join(self._credentials.schemes)})",
            }
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"cache-control", b"no-store"),
            *((b"www-authenticate", c.encode()) for c in challenges),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

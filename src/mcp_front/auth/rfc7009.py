"""The revocation endpoint (RFC 7009).

The client authenticates as at `/token`. A refresh token revokes its whole family; an access
token (a JWT this gateway signed, verified whatever its audience) has its `jti` recorded in
`RevokedAccessTokens` until it would have expired. `token_type_hint` only decides which kind
is tried first. An unknown, malformed or expired token, and a token that belongs to another
client, all get the same empty 200 (RFC 7009 §2.2): the answer never tells a client whether a
token exists, and a client cannot revoke another client's tokens.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from mcp_front.auth.clients import RegisteredClients
from mcp_front.auth.errors import NO_STORE, OAuthError, invalid_request
from mcp_front.auth.refresh import RefreshTokens
from mcp_front.auth.revocations import RevokedAccessTokens
from mcp_front.auth.rfc6749 import DEFAULT_MAX_BODY, Endpoint, authenticate_client, read_form
from mcp_front.auth.tokens import InvalidToken, TokenIssuer

__all__ = ["revocation_endpoint"]


def revocation_endpoint(
    *,
    clients: RegisteredClients,
    refresh_tokens: RefreshTokens,
    issuer: TokenIssuer,
    revoked: RevokedAccessTokens,
    max_body: int = DEFAULT_MAX_BODY,
) -> Endpoint:
    """The `/revoke` endpoint as a Starlette request handler (mount it with methods POST)."""

    async def revoke_access_token(token: str, client_id: str) -> bool:
        if token.count(".") != 2:
            return False
        try:
            claims = issuer.verify_access_token(token, audience=lambda _: True)
        except InvalidToken:
            return False
        if hmac.compare_digest(claims.client_id.encode(), client_id.encode()):
            await revoked.revoke(claims.jti, claims.expires_at)
        return True

    async def revoke_refresh_token(token: str, client_id: str) -> bool:
        family = await refresh_tokens.family(token)
        if family is None:
            return False
        if hmac.compare_digest(family.grant.client_id.encode(), client_id.encode()):
            await refresh_tokens.revoke_family_by_id(family.family_id)
        return True

    async def endpoint(request: Request) -> Response:
        try:
            form = await read_form(request, max_body=max_body)
            caller = await authenticate_client(request, form, clients)
            token = form.get("token")
            if token is None:
                raise invalid_request("token is required")
            kinds = [revoke_refresh_token, revoke_access_token]
            if form.get("token_type_hint") == "access_token":
                kinds.reverse()
            for revoke in kinds:
                if await revoke(token, caller.client_id):
                    break
        except OAuthError as error:
            return error.to_response()
        return Response(status_code=200, headers=dict(NO_STORE))

    return endpoint

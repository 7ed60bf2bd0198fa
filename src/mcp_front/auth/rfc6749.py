"""The token endpoint (RFC 6749 §3.2, OAuth 2.1): `authorization_code` and `refresh_token`.

Requests are `application/x-www-form-urlencoded` POSTs of bounded size; a parameter may
appear once (§3.2), and an empty one counts as absent (§3.1). The client authenticates with
exactly one of `none` (its `client_id` in the body), `client_secret_post`, or
`client_secret_basic` (RFC 6749 §2.3.1: id and secret form-urlencoded inside the Basic
credentials). Every response, token or error, carries `Cache-Control: no-store`.

`authorization_code`: the code is single use, bound to the client, the exact `redirect_uri`,
the PKCE S256 challenge and the resource; a replayed code is refused and what it issued is
revoked. The response always carries a refresh token, with or without `offline_access`.
`refresh_token`: rotated on every use (see `mcp_front.auth.refresh`); `resource`, if sent,
must name the resource of the family's grant (one resource per family, so narrowing can only
confirm it); `scope` may narrow the access token's scope, never widen it. The refresh token's
own grant never changes (RFC 6749 §6).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.requests import Request
from starlette.responses import Response

from mcp_front.auth.audience import AudienceValidator, normalise
from mcp_front.auth.clients import RegisteredClients
from mcp_front.auth.codes import AuthorizationCode, AuthorizationCodes
from mcp_front.auth.errors import (
    NO_STORE,
    OAuthError,
    invalid_client,
    invalid_grant,
    invalid_request,
    invalid_scope,
    invalid_target,
    unauthorized_client,
    unsupported_grant_type,
)
from mcp_front.auth.forms import DEFAULT_MAX_BODY, read_urlencoded
from mcp_front.auth.refresh import (
    InvalidRefreshToken,
    RefreshFamily,
    RefreshGrant,
    RefreshTokens,
)
from mcp_front.auth.revocations import RevokedAccessTokens
from mcp_front.auth.tokens import TokenIssuer
from mcp_front.metrics import GRANTS

__all__ = [
    "DEFAULT_MAX_BODY",
    "AuthenticatedClient",
    "authenticate_client",
    "read_form",
    "token_endpoint",
    "verify_pkce",
]

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    """The client a request authenticated as, and whether it used HTTP Basic."""

    client: OAuthClientInformationFull
    method: str

    @property
    def client_id(self) -> str:
        return self.client.client_id


async def read_form(request: Request, *, max_body: int = DEFAULT_MAX_BODY) -> dict[str, str]:
    """The request's form parameters, one value each; empty values dropped (RFC 6749 §3.1).

    Raises `OAuthError` for a method other than POST, another content type, an oversized or
    undecodable body, a repeated parameter, or a control character in a value.
    """
    form: dict[str, str] = {}
    for name, value in await read_urlencoded(request, max_body=max_body):
        if _CONTROL.search(name) or _CONTROL.search(value):
            raise invalid_request("parameters must not contain control characters")
        if not value:
            continue
        if name in form:
            if name == "resource":
                raise invalid_target("one resource per request")
            raise invalid_request(f"parameter {name!r} is repeated")
        form[name] = value
    return form


async def authenticate_client(
    request: Request, form: Mapping[str, str], clients: RegisteredClients
) -> AuthenticatedClient:
    """Authenticate the client with exactly one method: Basic, secret in body, or none."""
    authorization = request.headers.get("authorization")
    secret: str | None
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise invalid_client("unsupported client authentication scheme", basic=True)
        if "client_secret" in form:
            raise invalid_request("use one client authentication method, not several")
        client_id, secret = _basic_credentials(credentials.strip())
        if "client_id" in form and form["client_id"] != client_id:
            raise invalid_request("client_id does not match the Basic credentials")
        method = "client_secret_basic"
    else:
        if "client_id" not in form:
            raise invalid_client("client authentication is required")
        client_id = form["client_id"]
        secret = form.get("client_secret")
        method = "client_secret_post" if secret is not None else "none"
    basic = method == "client_secret_basic"
    client = await clients.authenticate(client_id, secret)
    if client is None:
        raise invalid_client("client authentication failed", basic=basic)
    registered = client.token_endpoint_auth_method
    if registered is not None and registered != method and not (secret is not None and registered != "none"):
        # A confidential client may use either secret method; a public one only `none`.
        raise invalid_client("client authentication failed", basic=basic)
    return AuthenticatedClient(client, method)


def verify_pkce(verifier: str, challenge: str) -> bool:
    """RFC 7636 S256: whether `verifier` is well-formed and hashes to `challenge`."""
    if not _VERIFIER.fullmatch(verifier):
        return False
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return hmac.compare_digest(computed, challenge.encode())


def token_endpoint(
    *,
    clients: RegisteredClients,
    codes: AuthorizationCodes,
    refresh_tokens: RefreshTokens,
    issuer: TokenIssuer,
    audiences: AudienceValidator,
    revoked: RevokedAccessTokens,
    max_body: int = DEFAULT_MAX_BODY,
    refresh_token_scopes: frozenset[str] = frozenset(),
) -> Endpoint:
    """The `/token` endpoint as a Starlette request handler (mount it with methods POST).

    The refresh-token lifetime and grace are those of `refresh_tokens`; the access-token
    lifetime is that of `issuer`. With `refresh_token_scopes`, a code exchange returns a
    refresh token only when the grant has one of those scopes (as the Go mcp-front's
    `refreshTokenScopes`); without, always.
    """

    async def endpoint(request: Request) -> Response:
        try:
            form = await read_form(request, max_body=max_body)
            caller = await authenticate_client(request, form, clients)
            grant_type = form.get("grant_type")
            if grant_type is None:
                raise invalid_request("grant_type is required")
            if grant_type == "authorization_code":
                _allowed(caller, grant_type)
                token = await _authorization_code(
                    form, caller, codes, refresh_tokens, issuer, audiences, revoked, refresh_token_scopes
                )
            elif grant_type == "refresh_token":
                _allowed(caller, grant_type)
                token = await _refresh_token(form, caller, refresh_tokens, issuer, audiences)
            else:
                raise unsupported_grant_type("supported grant types: authorization_code, refresh_token")
        except OAuthError as error:
            return error.to_response()
        GRANTS.inc(grant_type)
        return Response(
            token.model_dump_json(exclude_none=True),
            media_type="application/json",
            headers=dict(NO_STORE),
        )

    return endpoint


def _allowed(caller: AuthenticatedClient, grant_type: str) -> None:
    if grant_type not in caller.client.grant_types:
        raise unauthorized_client(f"this client is not registered for {grant_type}")


async def _authorization_code(
    form: Mapping[str, str],
    caller: AuthenticatedClient,
    codes: AuthorizationCodes,
    refresh_tokens: RefreshTokens,
    issuer: TokenIssuer,
    audiences: AudienceValidator,
    revoked: RevokedAccessTokens,
    refresh_token_scopes: frozenset[str],
) -> OAuthToken:
    code = form.get("code")
    verifier = form.get("code_verifier")
    if code is None:
        raise invalid_request("code is required")
    if verifier is None:
        raise invalid_request("code_verifier is required (PKCE)")
    requested = _requested_resource(form, audiences)
    grant = await codes.redeem(code)
    if grant is None:
        spent = await codes.replayed(code)
        if spent is not None:
            if spent.family_id is not None:
                await refresh_tokens.revoke_family_by_id(spent.family_id)
            if spent.access_token_jti is not None and spent.access_token_expires_at is not None:
                await revoked.revoke(spent.access_token_jti, spent.access_token_expires_at)
        raise invalid_grant("the authorization code is invalid, expired, or already used")
    _check_code(grant, form, caller, verifier, requested, audiences)

    refresh: str | None = None
    family: RefreshFamily | None = None
    if not refresh_token_scopes or refresh_token_scopes.intersection(grant.scope):
        refresh_grant = RefreshGrant(
            subject=grant.subject,
            client_id=caller.client_id,
            resource=grant.resource,
            scope=grant.scope,
            email=grant.email,
            groups=grant.groups,
        )
        refresh, family = await refresh_tokens.issue_family(refresh_grant)
    access = issuer.issue_access_token(
        subject=grant.subject,
        audience=grant.resource,
        client_id=caller.client_id,
        scope=grant.scope,
        email=grant.email,
        extra=_extra_claims(grant.groups, family.session if family is not None else None),
    )
    bound = await codes.bind(
        code,
        family_id=family.family_id if family is not None else None,
        access_token_jti=access.jti,
        access_token_expires_at=access.expires_at,
    )
    if not bound:  # replayed while these tokens were being issued: they never leave
        if family is not None:
            await refresh_tokens.revoke_family_by_id(family.family_id)
        await revoked.revoke(access.jti, access.expires_at)
        raise invalid_grant("the authorization code is invalid, expired, or already used")
    return OAuthToken(
        access_token=access.token,
        expires_in=int(issuer.access_token_ttl.total_seconds()),
        scope=" ".join(grant.scope) or None,
        refresh_token=refresh,
    )


def _check_code(
    grant: AuthorizationCode,
    form: Mapping[str, str],
    caller: AuthenticatedClient,
    verifier: str,
    requested: str | None,
    audiences: AudienceValidator,
) -> None:
    if not hmac.compare_digest(grant.client_id.encode(), caller.client_id.encode()):
        raise invalid_grant("the authorization code was issued to another client")
    if form.get("redirect_uri") != grant.redirect_uri:
        raise invalid_grant("redirect_uri does not match the authorization request")
    if not verify_pkce(verifier, grant.code_challenge):
        raise invalid_grant("code_verifier does not match the code_challenge")
    if requested is not None and requested != _canonical(grant.resource, audiences):
        raise invalid_target("resource does not match the authorization request")


async def _refresh_token(
    form: Mapping[str, str],
    caller: AuthenticatedClient,
    refresh_tokens: RefreshTokens,
    issuer: TokenIssuer,
    audiences: AudienceValidator,
) -> OAuthToken:
    token = form.get("refresh_token")
    if token is None:
        raise invalid_request("refresh_token is required")
    requested = _requested_resource(form, audiences)
    requested_scope = form.get("scope")
    family = await refresh_tokens.family(token)
    if family is not None:
        # Check what the request asks for before rotating, so a refused request costs nothing.
        _check_narrowing(family.grant, requested, requested_scope, audiences)
    try:
        successor, rotated = await refresh_tokens.rotate(token, caller.client_id)
    except InvalidRefreshToken:
        raise invalid_grant("the refresh token is invalid, expired, or revoked") from None
    grant = rotated.grant
    scope = _check_narrowing(grant, requested, requested_scope, audiences)
    access = issuer.issue_access_token(
        subject=grant.subject,
        audience=grant.resource,
        client_id=caller.client_id,
        scope=scope,
        email=grant.email,
        extra=_extra_claims(grant.groups, rotated.session),
    )
    return OAuthToken(
        access_token=access.token,
        expires_in=int(issuer.access_token_ttl.total_seconds()),
        scope=" ".join(scope) or None,
        refresh_token=successor,
    )


def _extra_claims(groups: tuple[str, ...], session: str | None) -> dict[str, Any]:
    """`sid` names the refresh family, so revoking it reaches its access tokens."""
    claims: dict[str, Any] = {}
    if session is not None:
        claims["sid"] = session
    if groups:
        claims["groups"] = list(groups)
    return claims


def _check_narrowing(
    grant: RefreshGrant, requested: str | None, requested_scope: str | None, audiences: AudienceValidator
) -> tuple[str, ...]:
    if requested is not None and requested != _canonical(grant.resource, audiences):
        raise invalid_target("resource is not covered by this refresh token")
    if requested_scope is None:
        return grant.scope
    wanted = tuple(dict.fromkeys(requested_scope.split(" ")))
    if any(not s for s in wanted) or not set(wanted) <= set(grant.scope):
        raise invalid_scope("scope may narrow the grant, never widen it")
    return wanted


def _requested_resource(form: Mapping[str, str], audiences: AudienceValidator) -> str | None:
    resource = form.get("resource")
    if resource is None:
        return None
    try:
        return _canonical(resource, audiences)
    except ValueError as error:
        raise invalid_target(str(error)) from None


def _canonical(resource: str, audiences: AudienceValidator) -> str:
    """A resource in canonical form: `…/svc`, `…/svc/mcp` and `…/svc/sse` all name `…/svc`."""
    service = audiences.service_for(resource)
    return audiences.resource_for(service) if service is not None else normalise(resource)


def _basic_credentials(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise invalid_client("malformed Basic credentials", basic=True) from None
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep:
        raise invalid_client("malformed Basic credentials", basic=True)
    try:
        client_id = unquote_plus(raw_id, errors="strict")
        secret = unquote_plus(raw_secret, errors="strict")
    except UnicodeDecodeError:
        raise invalid_client("malformed Basic credentials", basic=True) from None
    if not client_id or _CONTROL.search(client_id) or _CONTROL.search(secret):
        raise invalid_client("malformed Basic credentials", basic=True)
    return client_id, secret

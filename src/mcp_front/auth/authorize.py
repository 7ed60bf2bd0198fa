"""`/authorize`: check the client's request, remember it, and send the user to sign in.

The checks run in an order that matters. Until the client and its redirect URI are known
good, every error is an HTML page (400) and never a redirect, so the endpoint cannot be used
as an open redirector. After that, errors go back to the client's redirect URI with
`error`, `error_description`, `state` and `iss` (RFC 9207). A request that passes is stored
as an `AuthorizationTransaction`, bound to the browser by the login cookie, and the browser
goes to the identity provider with the gateway's own state, nonce and PKCE verifier.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcp_front.auth.audience import AudienceValidator, normalise
from mcp_front.auth.clients import RegisteredClients
from mcp_front.auth.errors import OAuthError, invalid_request, invalid_target
from mcp_front.auth.forms import read_query, read_urlencoded
from mcp_front.auth.redirect_uris import RedirectUriRules, match_redirect_uri
from mcp_front.auth.transactions import (
    AuthorizationTransaction,
    LoginCookie,
    Transactions,
    binding_of,
)
from mcp_front.crypto import random_token
from mcp_front.idp.base import IdentityProvider
from mcp_front.rate_limit import address_key
from mcp_front.storage import Store, StoreUnavailable
from mcp_front.web.pages import error_page

__all__ = ["authorize_endpoint", "redirect_to_client"]

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_MAX_PARAM = 2048
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def redirect_to_client(redirect_uri: str, params: Mapping[str, str | None]) -> RedirectResponse:
    """A 302 to `redirect_uri` with `params` added to its query (None values left out)."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((name, value) for name, value in params.items() if value is not None)
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return RedirectResponse(location, status_code=302, headers=_NO_STORE)


def error_redirect(
    redirect_uri: str, issuer: str, state: str | None, error: str, description: str
) -> RedirectResponse:
    """The client's redirect URI with an RFC 6749 §4.1.2.1 error and RFC 9207 `iss`."""
    safe = OAuthError(error, description)  # reduces the description to allowed characters
    return redirect_to_client(
        redirect_uri,
        {"error": safe.error, "error_description": safe.description, "state": state, "iss": issuer},
    )


async def _params(request: Request) -> dict[str, list[str]]:
    """The request's parameters: its form when POSTed, else its query; both bounded."""
    pairs = await read_urlencoded(request) if request.method == "POST" else read_query(request)
    params: dict[str, list[str]] = {}
    for key, value in pairs:
        params.setdefault(key, []).append(value)
    return params


def _single(params: dict[str, list[str]], name: str) -> str | None:
    """The one value of `name`, None if absent; OAuthError if repeated or too long."""
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise invalid_request(f"the {name} parameter must not be repeated")
    if len(values[0]) > _MAX_PARAM:
        raise invalid_request(f"the {name} parameter is too long")
    return values[0] or None


def authorize_endpoint(
    *,
    clients: RegisteredClients,
    store: Store,
    idp: IdentityProvider,
    audiences: AudienceValidator,
    issuer: str,
    callback_url: str,
    resource_fallback: bool = False,
    allow_loopback_port_flexibility: bool = True,
    transactions: Transactions | None = None,
    trusted_clients: frozenset[str] = frozenset(),
    redirect_rules: RedirectUriRules | None = None,
) -> Endpoint:
    """The `/authorize` endpoint (GET, and POST with a form body).

    `callback_url` is the gateway's own callback registered at the identity provider.
    `trusted_clients` are sent back to their redirect URI at once when their request is
    refused; every other client's user sees the error first. `redirect_rules` are checked
    again here, for clients registered before the rules were tightened.
    `resource_fallback` lets a request without `resource` through with the issuer as the
    audience (an issuer-wide token): a compatibility switch for clients that omit it.
    """
    saved = transactions or Transactions(store)
    cookie = LoginCookie(issuer)
    issuer_audience = normalise(issuer)

    async def authorize(request: Request) -> Response:
        try:
            params = await _params(request)
        except OAuthError as error:
            return error_page("This sign-in request is invalid", error.description, status_code=error.status)
        # (a) Until client and redirect URI are validated: pages, never redirects.
        try:
            client_id = _single(params, "client_id")
            requested_redirect = _single(params, "redirect_uri")
        except OAuthError as error:
            return error_page("This sign-in request is invalid", error.description)
        if client_id is None:
            return error_page(
                "This sign-in request is invalid", "The application did not say who it is (no client_id)."
            )
        try:
            client = await clients.get(
                client_id, requester=address_key(request.client.host if request.client else None)
            )
        except StoreUnavailable as unavailable:
            logger.warning("sign-in refused for now: %s", unavailable)
            page = error_page(
                "The gateway is briefly unavailable",
                "It cannot reach its storage right now. Try again in a few seconds.",
                status_code=503,
            )
            page.headers["Retry-After"] = "5"
            return page
        except Exception:
            logger.exception("looking up OAuth client failed")
            return error_page(
                "This application could not be checked",
                "The gateway could not load this application's details. Try again in a moment.",
                status_code=502,
            )
        if client is None:
            return error_page(
                "Unknown application",
                "This application is not registered with the gateway. Reconnect it from the application.",
            )
        registered = [str(uri) for uri in client.redirect_uris or []]
        redirect_uri = match_redirect_uri(
            requested_redirect, registered, loopback_port_flexibility=allow_loopback_port_flexibility
        )
        if redirect_uri is None:
            return error_page(
                "This sign-in request is invalid",
                "The application asked to send you back to an address it did not register, "
                "so the gateway stopped here.",
            )
        if redirect_rules is not None and not redirect_rules.allows(redirect_uri):
            return error_page(
                "This application is not allowed",
                "The application wants to send you back to an address this gateway does not "
                "allow, so the gateway stopped here. Ask your administrator.",
                status_code=403,
            )

        # (b) From here on, errors go back to the client: at once for a trusted client, and
        # for any other through a page the user leaves by choice (RFC 9700 §4.11.2), since
        # an automatic redirect to whatever a stranger registered is an open redirector.
        state: str | None = None

        def refuse(error: str, description: str) -> Response:
            back = error_redirect(redirect_uri, issuer, state, error, description)
            if client_id in trusted_clients:
                return back
            reason = OAuthError(error, description).description
            return error_page(
                "This sign-in request is invalid",
                f"The application's request could not be accepted: {reason}",
                back_to=back.headers["location"],
            )

        try:
            state = _single(params, "state")
            checked = _check(params)
        except OAuthError as error:
            return refuse(error.error, error.description)
        resource = checked.resource
        if resource:
            try:
                service = audiences.service_for(resource)
            except ValueError as bad:
                return refuse("invalid_target", f"resource: {bad}")
            if service is None:
                return refuse(
                    "invalid_target",
                    "the resource is not a service of this gateway: use the URL of the service "
                    "(its protected resource metadata names it)",
                )
            resource = audiences.resource_for(service)
        elif resource_fallback:
            resource = issuer_audience
        else:
            return refuse(
                "invalid_target",
                "send the resource parameter (RFC 8707) with the URL of the service to connect, "
                "e.g. the service's /mcp URL",
            )

        secret = cookie.secret_or_new(request)
        idp_state = random_token(32)
        record = AuthorizationTransaction(
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=state,
            code_challenge=checked.code_challenge,
            resource=resource,
            scope=checked.scope,
            idp_state=idp_state,
            nonce=random_token(32),
            idp_code_verifier=random_token(48),
            browser_binding=binding_of(secret),
            created_at=time.time(),
        )
        await saved.save(idp_state, record)
        location = idp.authorization_url(
            redirect_uri=callback_url,
            state=idp_state,
            nonce=record.nonce,
            code_verifier=record.idp_code_verifier,
        )
        response = RedirectResponse(location, status_code=302, headers=_NO_STORE)
        cookie.set(response, secret)
        return response

    return authorize


class _Checked:
    __slots__ = ("code_challenge", "resource", "scope")

    def __init__(self, code_challenge: str, resource: str | None, scope: tuple[str, ...]) -> None:
        self.code_challenge = code_challenge
        self.resource = resource
        self.scope = scope


def _check(params: dict[str, list[str]]) -> _Checked:
    response_type = _single(params, "response_type")
    if response_type != "code":
        raise OAuthError(
            "unsupported_response_type",
            "response_type must be code" if response_type else "response_type is missing (use code)",
        )
    challenge = _single(params, "code_challenge")
    method = _single(params, "code_challenge_method")
    if challenge is None:
        raise invalid_request("PKCE is required: send code_challenge with code_challenge_method=S256")
    if method != "S256":
        raise invalid_request(
            "code_challenge_method must be S256 (plain, and a missing method meaning plain, are refused)"
        )
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise invalid_request("code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
    resources = params.get("resource") or []
    if len(resources) > 1:
        raise invalid_target("request one resource at a time")
    raw_scope = _single(params, "scope") or ""
    scope = tuple(dict.fromkeys(raw_scope.split()))
    if any(not _SCOPE_TOKEN.fullmatch(token) for token in scope):
        raise OAuthError("invalid_scope", "scope contains characters that are not allowed")
    return _Checked(challenge, resources[0] if resources else None, scope)

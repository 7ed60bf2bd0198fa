"""Dynamic Client Registration (RFC 7591): the rules a client's metadata must follow, and `/register`.

`validate_client_metadata` turns a registration request (or a client metadata document)
into the mcp SDK's `OAuthClientMetadata`, refusing what this authorization server cannot
honour with the RFC 7591 error codes `invalid_redirect_uri` and `invalid_client_metadata`.
`registration_endpoint` serves it over HTTP, within a `NewClientBudget`.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Final

from mcp.shared.auth import OAuthClientMetadata
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcp_front.auth.client_store import StoredClients, TooManyClients
from mcp_front.auth.errors import OAuthError
from mcp_front.auth.forms import read_body
from mcp_front.auth.redirect_uris import (
    MAX_URI_LENGTH,
    InvalidRedirectUri,
    RedirectUriRules,
    check_redirect_uri,
)
from mcp_front.rate_limit import RateLimit, RateLimiter, address_key, network_key
from mcp_front.text import BIDI_CONTROLS, escaped, is_plain

__all__ = [
    "ALLOWED_AUTH_METHODS",
    "ALLOWED_GRANT_TYPES",
    "ALLOWED_RESPONSE_TYPES",
    "MAX_REGISTRATION_BYTES",
    "NewClientBudget",
    "RegistrationError",
    "registration_endpoint",
    "validate_client_metadata",
]

logger = logging.getLogger(__name__)

MAX_REGISTRATION_BYTES: Final = 64 * 1024
ALLOWED_GRANT_TYPES: Final = frozenset({"authorization_code", "refresh_token"})
ALLOWED_RESPONSE_TYPES: Final = frozenset({"code"})
ALLOWED_AUTH_METHODS: Final = frozenset({"none", "client_secret_post", "client_secret_basic"})
DEFAULT_AUTH_METHOD: Final = "client_secret_basic"
"""RFC 7591 §2: a client that names no `token_endpoint_auth_method` uses `client_secret_basic`."""

MAX_REDIRECT_URIS: Final = 20
MAX_NAME_LENGTH: Final = 200
MAX_CONTACTS: Final = 5
MAX_TEXT_LENGTH: Final = 200
MAX_STORED_BYTES: Final = 8 * 1024
"""Largest client record kept, once unsupported metadata is dropped."""

# What a registration may say that this server keeps; every other member is dropped.
_KEPT_URIS: Final = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
_KEPT_TEXTS: Final = ("software_id", "software_version")
_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class RegistrationError(Exception):
    """A refused registration, as RFC 7591 §3.2.2 describes it."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def response(self, status_code: int = 400, headers: Mapping[str, str] | None = None) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=status_code, headers={**_NO_STORE, **(headers or {})})


def _metadata_error(description: str) -> RegistrationError:
    return RegistrationError("invalid_client_metadata", description)


def _redirect_error(description: str) -> RegistrationError:
    return RegistrationError("invalid_redirect_uri", description)


def _string_list(data: Mapping[str, Any], name: str) -> list[str] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _metadata_error(f"{name} must be an array of strings")
    return value


def _text(body: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise _metadata_error(f"{name} must be a string of 1 to {limit} characters")
    if not is_plain(value):
        raise _metadata_error(f"{name} must not contain control or bidirectional-override characters")
    return value


def _optional_uri(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_URI_LENGTH or not value.startswith("https://"):
        raise _metadata_error(f"{name} must be an https URL of at most {MAX_URI_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c in BIDI_CONTROLS for c in value):
        raise _metadata_error(f"{name} must not contain whitespace or control characters")
    return value


def validate_client_metadata(
    data: object,
    *,
    allowed_auth_methods: frozenset[str] = ALLOWED_AUTH_METHODS,
    redirect_rules: RedirectUriRules | None = None,
) -> OAuthClientMetadata:
    """The registration request `data` (a decoded JSON object), checked and normalised.

    Omitted `grant_types`, `response_types` and `application_type` take their RFC 7591
    defaults; an omitted `token_endpoint_auth_method` becomes `client_secret_basic` (RFC 7591
    §2), unless only `none` is allowed. Only what this server uses or shows is kept, each
    value bounded (RFC 7591 §3.2.1 lets a server drop what it does not support): unknown
    members, `jwks` and `jwks_uri` are dropped. Raises `RegistrationError` naming the first
    problem.
    """
    if not isinstance(data, dict):
        raise _metadata_error("the registration request must be a JSON object")
    given: dict[str, Any] = {key: value for key, value in data.items() if value is not None}
    body: dict[str, Any] = {}

    raw_uris = _string_list(given, "redirect_uris")
    if not raw_uris:
        raise _redirect_error("redirect_uris is required and must list at least one URI")
    if len(raw_uris) > MAX_REDIRECT_URIS:
        raise _redirect_error(f"at most {MAX_REDIRECT_URIS} redirect URIs may be registered")
    for uri in raw_uris:
        try:
            check_redirect_uri(uri, redirect_rules)
        except InvalidRedirectUri as invalid:
            raise _redirect_error(str(invalid)) from None
    body["redirect_uris"] = list(dict.fromkeys(raw_uris))

    grant_types = _string_list(given, "grant_types") or ["authorization_code", "refresh_token"]
    unsupported = sorted(set(grant_types) - ALLOWED_GRANT_TYPES)
    if unsupported:
        raise _metadata_error(
            f"unsupported grant_types {unsupported}: only authorization_code and refresh_token are offered"
        )
    if "authorization_code" not in grant_types:
        raise _metadata_error("grant_types must include authorization_code")
    body["grant_types"] = list(dict.fromkeys(grant_types))

    response_types = _string_list(given, "response_types") or ["code"]
    if set(response_types) - ALLOWED_RESPONSE_TYPES:
        raise _metadata_error('response_types must be ["code"]: only the authorization code flow is offered')
    body["response_types"] = ["code"]

    method = given.get("token_endpoint_auth_method")
    if method is not None and not isinstance(method, str):
        raise _metadata_error("token_endpoint_auth_method must be a string")
    if method is None:
        method = DEFAULT_AUTH_METHOD if DEFAULT_AUTH_METHOD in allowed_auth_methods else "none"
    if method not in allowed_auth_methods:
        raise _metadata_error(
            f"token_endpoint_auth_method {method!r} is not supported: "
            f"use one of {sorted(allowed_auth_methods)}"
        )
    body["token_endpoint_auth_method"] = method

    application_type = given.get("application_type", "native")
    if not isinstance(application_type, str) or application_type not in ("web", "native"):
        raise _metadata_error('application_type must be "web" or "native"')
    body["application_type"] = application_type

    scope = given.get("scope")
    if scope is not None:
        if (
            not isinstance(scope, str)
            or len(scope) > MAX_URI_LENGTH
            or not all(_SCOPE_TOKEN.fullmatch(t) for t in scope.split())
        ):
            raise _metadata_error("scope must be a space-separated string of scope tokens")
        body["scope"] = " ".join(dict.fromkeys(scope.split())) or None

    body["client_name"] = _text(given, "client_name", MAX_NAME_LENGTH)
    for name in _KEPT_TEXTS:
        body[name] = _text(given, name, MAX_TEXT_LENGTH)
    for name in _KEPT_URIS:
        body[name] = _optional_uri(given, name)
    contacts = _string_list(given, "contacts")
    if contacts is not None:
        if len(contacts) > MAX_CONTACTS:
            raise _metadata_error(f"at most {MAX_CONTACTS} contacts may be registered")
        body["contacts"] = [_text({"contacts": c}, "contacts", MAX_TEXT_LENGTH) for c in contacts]

    try:
        metadata = OAuthClientMetadata.model_validate({k: v for k, v in body.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "metadata"
        raise _metadata_error(f"{where}: {first['msg']}") from None
    if len(metadata.model_dump_json(exclude_none=True)) > MAX_STORED_BYTES:
        raise _metadata_error(f"the client's metadata exceeds {MAX_STORED_BYTES} bytes")
    return metadata


class NewClientBudget:
    """How many clients registration may create: per address, and for all addresses together.

    The overall budget is what bounds the storage. Each address's first
    `RESERVED_PER_ADDRESS` new clients do not draw on it, so a few addresses that use it up
    cannot keep everyone else from registering; nor do a network's first
    `RESERVED_PER_NETWORK` (an IPv4 /24, an IPv6 /48), so that holding many addresses of
    one network does not multiply the reserve.
    """

    RESERVED_PER_ADDRESS: Final = RateLimit(5, timedelta(hours=1))
    RESERVED_PER_NETWORK: Final = RateLimit(20, timedelta(hours=1))

    def __init__(
        self, limiter: RateLimiter, *, per_address: RateLimit | None, overall: RateLimit | None
    ) -> None:
        self._limiter = limiter
        self._per_address = per_address
        self._overall = overall

    async def admit(self, address: str) -> float:
        """Count a new client from `address`: 0 if allowed, else the seconds to wait."""
        if self._per_address is not None:
            wait = await self._limiter.acquire(f"new-clients:{address}", self._per_address)
            if wait > 0:
                return wait
        if self._overall is None:
            return 0.0
        reserved = await self._limiter.acquire(f"new-clients-reserved:{address}", self.RESERVED_PER_ADDRESS)
        if reserved == 0:
            network = f"new-clients-reserved-network:{network_key(address)}"
            if await self._limiter.acquire(network, self.RESERVED_PER_NETWORK) == 0:
                return 0.0
        return await self._limiter.acquire("new-clients-overall", self._overall)


def registration_endpoint(
    clients: StoredClients,
    budget: NewClientBudget | None = None,
    *,
    redirect_rules: RedirectUriRules | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for `POST /register`: RFC 7591 in, `201` with the client information out.

    The client secret of a confidential client appears in this response only. Requests over
    `MAX_REGISTRATION_BYTES` get `413`; a new client past `budget` gets `429` with
    `Retry-After` (finding an identical public client again costs nothing).
    """

    async def register(request: Request) -> Response:
        if request.method != "POST":
            error = _metadata_error("registration requires POST")
            return error.response(405, {"Allow": "POST"})
        address = address_key(request.client.host if request.client else None)
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            return _metadata_error("the registration request must be application/json").response()
        try:
            body = await read_body(request, max_body=MAX_REGISTRATION_BYTES)
        except OAuthError as unread:
            if unread.status == 413:
                error = _metadata_error(f"the registration request exceeds {MAX_REGISTRATION_BYTES} bytes")
                return error.response(413)
            return _metadata_error(unread.description).response()
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return _metadata_error("the registration request is not valid JSON").response()
        try:
            metadata = validate_client_metadata(data, redirect_rules=redirect_rules)
        except RegistrationError as error:
            return error.response()
        try:
            result = await clients.register(
                metadata, admit=None if budget is None else functools.partial(budget.admit, address)
            )
        except TooManyClients as refused:
            retry = str(max(1, math.ceil(refused.retry_after)))
            logger.warning("client registration from %s refused: too many new clients", escaped(address))
            too_many = RegistrationError(
                "temporarily_unavailable", f"too many new clients; retry in {retry} seconds"
            )
            return too_many.response(429, {"Retry-After": retry})
        information = result.client.model_dump(mode="json", exclude_none=True)
        if result.client_secret is not None:
            information["client_secret"] = result.client_secret
            information["client_secret_expires_at"] = 0
        logger.info(
            "client %s %s (%s)",
            result.client.client_id,
            "registered again" if result.reused else "registered",
            escaped(result.client.client_name or "unnamed"),
        )
        return JSONResponse(information, status_code=201, headers=_NO_STORE)

    return register

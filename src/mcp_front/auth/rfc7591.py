"""Client metadata (RFC 7591 §2): the rules a client's metadata must follow here.

`validate_client_metadata` turns a registration request (or a client metadata document)
into the mcp SDK's `OAuthClientMetadata`, refusing what this authorization server cannot
honour with the RFC 7591 error codes `invalid_redirect_uri` and `invalid_client_metadata`
(§3.2.2). `registration` serves it at `/register`; `client_metadata` applies it to
Client ID Metadata Documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from mcp.shared.auth import OAuthClientMetadata
from pydantic import ValidationError
from starlette.responses import JSONResponse

from mcp_front.auth.redirect_uris import (
    MAX_URI_LENGTH,
    InvalidRedirectUri,
    RedirectUriRules,
    check_redirect_uri,
)
from mcp_front.errors import MCPFrontError
from mcp_front.text import BIDI_CONTROLS, is_plain

__all__ = [
    "ALLOWED_AUTH_METHODS",
    "ALLOWED_GRANT_TYPES",
    "ALLOWED_RESPONSE_TYPES",
    "NO_STORE",
    "RegistrationError",
    "metadata_error",
    "validate_client_metadata",
]

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
NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class RegistrationError(MCPFrontError):
    """A refused registration, as RFC 7591 §3.2.2 describes it."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def response(self, status_code: int = 400, headers: Mapping[str, str] | None = None) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=status_code, headers={**NO_STORE, **(headers or {})})


def metadata_error(description: str) -> RegistrationError:
    """An `invalid_client_metadata` refusal."""
    return RegistrationError("invalid_client_metadata", description)


def _redirect_error(description: str) -> RegistrationError:
    return RegistrationError("invalid_redirect_uri", description)


def _string_list(data: Mapping[str, Any], name: str) -> list[str] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise metadata_error(f"{name} must be an array of strings")
    return value


def _text(body: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise metadata_error(f"{name} must be a string of 1 to {limit} characters")
    if not is_plain(value):
        raise metadata_error(f"{name} must not contain control or bidirectional-override characters")
    return value


def _optional_uri(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_URI_LENGTH or not value.startswith("https://"):
        raise metadata_error(f"{name} must be an https URL of at most {MAX_URI_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c in BIDI_CONTROLS for c in value):
        raise metadata_error(f"{name} must not contain whitespace or control characters")
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
        raise metadata_error("the registration request must be a JSON object")
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
        raise metadata_error(
            f"unsupported grant_types {unsupported}: only authorization_code and refresh_token are offered"
        )
    if "authorization_code" not in grant_types:
        raise metadata_error("grant_types must include authorization_code")
    body["grant_types"] = list(dict.fromkeys(grant_types))

    response_types = _string_list(given, "response_types") or ["code"]
    if set(response_types) - ALLOWED_RESPONSE_TYPES:
        raise metadata_error('response_types must be ["code"]: only the authorization code flow is offered')
    body["response_types"] = ["code"]

    method = given.get("token_endpoint_auth_method")
    if method is not None and not isinstance(method, str):
        raise metadata_error("token_endpoint_auth_method must be a string")
    if method is None:
        method = DEFAULT_AUTH_METHOD if DEFAULT_AUTH_METHOD in allowed_auth_methods else "none"
    if method not in allowed_auth_methods:
        raise metadata_error(
            f"token_endpoint_auth_method {method!r} is not supported: "
            f"use one of {sorted(allowed_auth_methods)}"
        )
    body["token_endpoint_auth_method"] = method

    application_type = given.get("application_type", "native")
    if not isinstance(application_type, str) or application_type not in ("web", "native"):
        raise metadata_error('application_type must be "web" or "native"')
    body["application_type"] = application_type

    scope = given.get("scope")
    if scope is not None:
        if (
            not isinstance(scope, str)
            or len(scope) > MAX_URI_LENGTH
            or not all(_SCOPE_TOKEN.fullmatch(t) for t in scope.split())
        ):
            raise metadata_error("scope must be a space-separated string of scope tokens")
        body["scope"] = " ".join(dict.fromkeys(scope.split())) or None

    body["client_name"] = _text(given, "client_name", MAX_NAME_LENGTH)
    for name in _KEPT_TEXTS:
        body[name] = _text(given, name, MAX_TEXT_LENGTH)
    for name in _KEPT_URIS:
        body[name] = _optional_uri(given, name)
    contacts = _string_list(given, "contacts")
    if contacts is not None:
        if len(contacts) > MAX_CONTACTS:
            raise metadata_error(f"at most {MAX_CONTACTS} contacts may be registered")
        body["contacts"] = [_text({"contacts": c}, "contacts", MAX_TEXT_LENGTH) for c in contacts]

    try:
        metadata = OAuthClientMetadata.model_validate({k: v for k, v in body.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "metadata"
        raise metadata_error(f"{where}: {first['msg']}") from None
    if len(metadata.model_dump_json(exclude_none=True)) > MAX_STORED_BYTES:
        raise metadata_error(f"the client's metadata exceeds {MAX_STORED_BYTES} bytes")
    return metadata

"""Any OpenID Connect provider: discovery, the code exchange, and a fully checked ID token.

The ID token arrives straight from the token endpoint over TLS, but it is still checked in
full (signature against the provider's JWKS, `iss`, `aud`/`azp`, `exp`, `iat`, `nonce`):
the nonce is what ties the token to this browser's login, and a single code path for all
providers is easier to trust than one with shortcuts.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal
from urllib.parse import quote, urlencode

import anyio
import httpx2
import jwt

from mcp_front.idp import _http
from mcp_front.idp.base import Identity, IdentityProvider, IdentityProviderError
from mcp_front.idp.jwks import JWKSCache
from mcp_front.idp.pkce import s256_challenge

DEFAULT_SCOPES: Final = ("openid", "email", "profile")
DEFAULT_LEEWAY_SECONDS: Final = 60

TokenAuthMethod = Literal["client_secret_basic", "client_secret_post"]

_JWT_ERRORS: Final[tuple[tuple[type[jwt.PyJWTError], str], ...]] = (
    (jwt.ExpiredSignatureError, "the ID token has expired (check the gateway's clock)"),
    (jwt.ImmatureSignatureError, "the ID token was issued in the future (check the gateway's clock)"),
    (jwt.InvalidAudienceError, "the ID token was issued for another client"),
    (jwt.InvalidIssuerError, "the ID token comes from another issuer than the configured one"),
    (jwt.InvalidSignatureError, "the ID token's signature does not verify"),
)


@dataclass(frozen=True, slots=True)
class OIDCEndpoints:
    """Where the provider lives, from its discovery document or from configuration."""

    authorization_endpoint: str
    token_endpoint: str
    issuer: str | None = None
    jwks_uri: str | None = None
    userinfo_endpoint: str | None = None
    token_endpoint_auth_methods: frozenset[str] = frozenset({"client_secret_basic"})
    code_challenge_methods: frozenset[str] = frozenset({"S256"})


class OIDCProvider(IdentityProvider):
    """An OpenID Connect provider, found by discovery or configured endpoint by endpoint.

    With `discovery_url`, the endpoints come from the provider's
    `.well-known/openid-configuration` (fetched once, on first use or by `discover()`); any
    endpoint given explicitly overrides the discovered one. Without it, give at least
    `authorization_endpoint` and `token_endpoint`, plus `issuer` and `jwks_uri` to verify
    ID tokens; with neither, the user is read from `userinfo_endpoint` instead, which is
    trusted because it is called over TLS with the access token just obtained.

    `authorization_url()` is synchronous, so a discovery-based provider must have been
    prepared with `await provider.discover()` first (the gateway does so at start-up).
    """

    name: str = "oidc"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        discovery_url: str | None = None,
        issuer: str | None = None,
        authorization_endpoint: str | None = None,
        token_endpoint: str | None = None,
        userinfo_endpoint: str | None = None,
        jwks_uri: str | None = None,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        groups_claim: str | None = "groups",
        token_auth_method: TokenAuthMethod | None = None,
        authorization_params: Mapping[str, str] | None = None,
        leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
        http: httpx2.AsyncClient | None = None,
    ) -> None:
        if discovery_url is None and (authorization_endpoint is None or token_endpoint is None):
            raise ValueError("give discovery_url, or both authorization_endpoint and token_endpoint")
        if discovery_url is None and jwks_uri is not None and issuer is None:
            raise ValueError("jwks_uri needs issuer: ID tokens are checked against both")
        if discovery_url is None and jwks_uri is None and userinfo_endpoint is None:
            raise ValueError("without jwks_uri, userinfo_endpoint is needed to learn who signed in")
        self.client_id = client_id
        self._client_secret = client_secret
        self.discovery_url = discovery_url
        self.scopes = tuple(scopes)
        self.groups_claim = groups_claim
        self.token_auth_method = token_auth_method
        self.authorization_params = dict(authorization_params or {})
        self.leeway_seconds = leeway_seconds
        self._overrides: dict[str, Any] = {
            key: value
            for key, value in {
                "issuer": issuer,
                "authorization_endpoint": authorization_endpoint,
                "token_endpoint": token_endpoint,
                "userinfo_endpoint": userinfo_endpoint,
                "jwks_uri": jwks_uri,
            }.items()
            if value is not None
        }
        self._owns_http = http is None
        self._http = http or _http.new_client()
        self._endpoints: OIDCEndpoints | None = None
        if discovery_url is None:
            self._endpoints = OIDCEndpoints(
                authorization_endpoint=authorization_endpoint or "",
                token_endpoint=token_endpoint or "",
                issuer=issuer,
                jwks_uri=jwks_uri,
                userinfo_endpoint=userinfo_endpoint,
                token_endpoint_auth_methods=frozenset({"client_secret_basic", "client_secret_post"}),
            )
        self._jwks: JWKSCache | None = None
        self._discovery_lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r}, discovery_url={self.discovery_url!r})"

    @property
    def jwks(self) -> JWKSCache | None:
        """The signing key cache, once the JWKS URI is known."""
        return self._jwks

    async def aclose(self) -> None:
        """Close the HTTP client if this provider made it."""
        if self._owns_http:
            await self._http.aclose()

    async def discover(self) -> OIDCEndpoints:
        """The provider's endpoints, fetching the discovery document the first time."""
        async with self._discovery_lock:
            if self._endpoints is None:
                assert self.discovery_url is not None
                response = await _http.send(self._http, "GET", self.discovery_url, what="discovery request")
                document = _http.json_object(response, what="discovery document")
                self._endpoints = replace(_endpoints_from(document), **self._overrides)
            if self._jwks is None and self._endpoints.jwks_uri is not None:
                self._jwks = JWKSCache(self._endpoints.jwks_uri, self._http)
            return self._endpoints

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        """The provider's authorization URL with PKCE (S256), `state` and `nonce`."""
        if self._endpoints is None:
            raise IdentityProviderError(
                "not_configured", "the identity provider's discovery document has not been loaded yet"
            )
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
            "nonce": nonce,
            **self.authorization_params,
        }
        if "S256" in self._endpoints.code_challenge_methods:
            params |= {"code_challenge": s256_challenge(code_verifier), "code_challenge_method": "S256"}
        endpoint = self._endpoints.authorization_endpoint
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{urlencode(params, quote_via=quote)}"

    async def complete(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
        """Exchange the code, check the ID token, read userinfo when needed, and return the user."""
        endpoints = await self.discover()
        tokens = await self._exchange(endpoints, code, redirect_uri, code_verifier)
        claims: dict[str, Any] = {}
        id_token = tokens.get("id_token")
        if self._jwks is not None:
            if not isinstance(id_token, str):
                raise IdentityProviderError("invalid_id_token", "the identity provider returned no ID token")
            claims = await self.validate_id_token(id_token, nonce=nonce)
        if endpoints.userinfo_endpoint is not None and self._needs_userinfo(claims):
            claims = await self._userinfo(endpoints.userinfo_endpoint, tokens, claims)
        return self.identity_from_claims(claims)

    async def validate_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The claims of `id_token` after checking signature, issuer, audience, times and nonce."""
        endpoints = await self.discover()
        assert self._jwks is not None, "ID tokens can only be checked with a jwks_uri"
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise IdentityProviderError("invalid_id_token", "the ID token is malformed") from None
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(alg, str) or not (kid is None or isinstance(kid, str)):
            raise IdentityProviderError("invalid_id_token", "the ID token's header is malformed")
        key = await self._jwks.key_for(kid, alg)
        try:
            unverified = jwt.decode(id_token, options={"verify_signature": False})
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key,
                algorithms=[alg],
                audience=self.client_id,
                issuer=self.expected_issuer(endpoints, unverified),
                leeway=self.leeway_seconds,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise IdentityProviderError(
                "invalid_id_token", f"the ID token lacks the {exc.claim!r} claim"
            ) from None
        except jwt.PyJWTError as exc:
            message = next((text for kind, text in _JWT_ERRORS if isinstance(exc, kind)), None)
            raise IdentityProviderError("invalid_id_token", message or "the ID token is malformed") from None
        self._check_binding(claims, nonce)
        return claims

    def expected_issuer(self, endpoints: OIDCEndpoints, unverified_claims: Mapping[str, Any]) -> str:
        """The `iss` an ID token must carry; multi-tenant providers override this."""
        if endpoints.issuer is None:
            raise IdentityProviderError("not_configured", "the identity provider's issuer is not known")
        return endpoints.issuer

    def identity_from_claims(self, claims: Mapping[str, Any]) -> Identity:
        """Map verified claims to an `Identity`; providers with other claim names override this."""
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise IdentityProviderError(
                "provider_error", "the identity provider did not say who signed in (no `sub`)"
            )
        return Identity(
            subject=subject,
            email=_string(claims.get("email")),
            email_verified=is_true(claims.get("email_verified")),
            name=_string(claims.get("name")),
            groups=self._groups(claims),
            claims=claims,
        )

    def _groups(self, claims: Mapping[str, Any]) -> frozenset[str]:
        value = claims.get(self.groups_claim) if self.groups_claim else None
        if isinstance(value, str):
            return frozenset({value})
        if isinstance(value, Iterable):
            return frozenset(item for item in value if isinstance(item, str))
        return frozenset()

    def _needs_userinfo(self, claims: Mapping[str, Any]) -> bool:
        return (
            not claims
            or "email" not in claims
            or (bool(self.groups_claim) and self.groups_claim not in claims)
        )

    def _check_binding(self, claims: Mapping[str, Any], nonce: str) -> None:
        """The ID token belongs to this login (`nonce`) and to this client (`azp`)."""
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not hmac.compare_digest(token_nonce.encode(), nonce.encode()):
            raise IdentityProviderError(
                "invalid_id_token", "the ID token does not belong to this sign-in (nonce)"
            )
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.client_id:
            raise IdentityProviderError("invalid_id_token", "the ID token was issued to another client (azp)")

    async def _exchange(
        self, endpoints: OIDCEndpoints, code: str, redirect_uri: str, code_verifier: str
    ) -> dict[str, Any]:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json"}
        if self._auth_method(endpoints) == "client_secret_post":
            data |= {"client_id": self.client_id, "client_secret": self._client_secret}
        else:
            headers["Authorization"] = basic_authorization(self.client_id, self._client_secret)
        response = await _http.send(
            self._http, "POST", endpoints.token_endpoint, what="code exchange", headers=headers, data=data
        )
        tokens = _http.json_object(response, what="code exchange", kind="exchange_failed")
        if not isinstance(tokens.get("access_token"), str):
            raise IdentityProviderError("exchange_failed", "the identity provider returned no access token")
        return tokens

    def _auth_method(self, endpoints: OIDCEndpoints) -> TokenAuthMethod:
        if self.token_auth_method is not None:
            return self.token_auth_method
        supported = endpoints.token_endpoint_auth_methods
        if "client_secret_basic" not in supported and "client_secret_post" in supported:
            return "client_secret_post"
        return "client_secret_basic"

    async def _userinfo(
        self, endpoint: str, tokens: Mapping[str, Any], claims: dict[str, Any]
    ) -> dict[str, Any]:
        response = await _http.send(
            self._http,
            "GET",
            endpoint,
            what="user info request",
            headers={"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"},
        )
        info = _http.json_object(response, what="user info")
        if claims and info.get("sub") != claims.get("sub"):
            raise IdentityProviderError(
                "provider_error", "the user info describes another user than the ID token"
            )
        return info | claims  # signed ID token claims win over userinfo


def basic_authorization(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1 HTTP Basic: each part form-encoded before base64, as the RFC requires."""
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def is_true(value: Any) -> bool:
    """A boolean claim; some providers send `"true"` as a string."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _endpoints_from(document: Mapping[str, Any]) -> OIDCEndpoints:
    """The endpoints of a discovery document, rejecting one that lacks what sign-in needs."""
    required = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    missing = [key for key in required if not isinstance(document.get(key), str)]
    if missing:
        raise IdentityProviderError(
            "provider_error", f"the identity provider's discovery document lacks {', '.join(missing)}"
        )
    methods = document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
    challenges = document.get("code_challenge_methods_supported", [])
    return OIDCEndpoints(
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        issuer=document["issuer"],
        jwks_uri=document["jwks_uri"],
        userinfo_endpoint=_string(document.get("userinfo_endpoint")),
        token_endpoint_auth_methods=frozenset(m for m in methods if isinstance(m, str)),
        code_challenge_methods=frozenset(m for m in challenges if isinstance(m, str)),
    )

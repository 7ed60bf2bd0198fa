"""Hosted MCP servers that are OAuth-protected themselves (`userAuthentication.type:
"mcp-oauth"`): finding their authorization server, and the gateway's client there.

Discovery follows the MCP authorization spec, with the SDK's helpers: the server's 401
names its protected-resource metadata (`resource_metadata`, RFC 9728), or the well-known
URLs are tried, path-inserted first; that names the authorization server, whose metadata
is found the same way (RFC 8414 and OpenID discovery, path-inserted forms included) and
must name the issuer it was asked about.

The gateway's client there is, in this order: one configured by hand (`clientId`); its
client metadata document (served at `/oauth/client-metadata.json`, over https) when the
server takes those; a registration (RFC 7591). A registration is kept per issuer in the
store, sealed with the keyring (it may hold a client secret), so restarts and replicas
reuse it. What is found is cached in the process; a failure is not, and is told to the
user as the service being unreachable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    build_protected_resource_metadata_discovery_urls,
    extract_resource_metadata_from_www_auth,
    extract_scope_from_www_auth,
    handle_auth_metadata_response,
    handle_protected_resource_response,
    is_valid_client_metadata_url,
    issuers_match,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata, ProtectedResourceMetadata

from mcp_front.config import MCPOAuthUserAuthentication, ServerConfig
from mcp_front.credentials.oauth_connections import ServiceUnreachable, callback_path
from mcp_front.credentials.providers import ClientAuthentication, ProviderEndpoints
from mcp_front.crypto import DecryptionError, Keyring, digest
from mcp_front.protocol.revisions import GATEWAY_CLIENT_INFO, LATEST_HANDSHAKE_VERSION
from mcp_front.storage import Store

__all__ = ["CLIENT_METADATA_PATH", "UPSTREAM_CLIENTS_NAMESPACE", "HostedServerAuthorization"]

logger = logging.getLogger(__name__)

UPSTREAM_CLIENTS_NAMESPACE = "credentials.upstream_clients"
CLIENT_METADATA_PATH = "/oauth/client-metadata.json"
_CONTEXT = b"credentials.upstream_clients"
_ACCEPT = "application/json, text/event-stream"
_POST: Final = "client_secret_post"
RETRY_DISCOVERY: Final = 30.0
"""Seconds a failed discovery is remembered before it is tried again."""


class HostedServerAuthorization:
    """The `EndpointsSource` of the `mcp-oauth` services."""

    def __init__(
        self,
        servers: Mapping[str, ServerConfig],
        *,
        store: Store,
        keyring: Keyring,
        base_url: str,
        http: httpx2.AsyncClient,
    ) -> None:
        self._services: dict[str, tuple[str, MCPOAuthUserAuthentication]] = {
            name: (server.url, server.user_authentication)
            for name, server in servers.items()
            if isinstance(server.user_authentication, MCPOAuthUserAuthentication)
            and isinstance(server.url, str)
        }
        self._store = store
        self._keyring = keyring
        self._base_url = base_url.rstrip("/")
        self._http = http
        self._found: dict[str, ProviderEndpoints] = {}
        self._failed: dict[str, tuple[float, str]] = {}
        self._locks: dict[str, anyio.Lock] = {}

    @property
    def display_names(self) -> dict[str, str]:
        return {name: settings.display_name for name, (_, settings) in self._services.items()}

    @property
    def client_metadata_url(self) -> str:
        return self._base_url + CLIENT_METADATA_PATH

    def client_metadata(self) -> dict[str, object]:
        """The gateway's client metadata document, for servers that take one."""
        return {
            "client_id": self.client_metadata_url,
            "client_name": f"mcp-front at {urlsplit(self._base_url).netloc}",
            "client_uri": self._base_url,
            "redirect_uris": self._redirect_uris(),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }

    async def __call__(self, service: str) -> ProviderEndpoints:
        found = self._found.get(service)
        if found is not None:
            return found
        async with self._locks.setdefault(service, anyio.Lock()):
            found = self._found.get(service)
            if found is not None:
                return found
            failed = self._failed.get(service)
            if failed is not None and anyio.current_time() < failed[0]:
                # Page views and calls do not retry a failing server more than twice a minute.
                raise ServiceUnreachable(failed[1])
            try:
                found = await self._discover(service)
            except ServiceUnreachable as error:
                self._failed[service] = (anyio.current_time() + RETRY_DISCOVERY, str(error))
                raise
            self._found[service] = found
            self._failed.pop(service, None)
            return found

    # -- discovery ---------------------------------------------------------------------------

    async def _discover(self, service: str) -> ProviderEndpoints:
        url, settings = self._services[service]
        name = settings.display_name
        challenge = await self._request(name, "POST", url, json=_initialize(), headers={"Accept": _ACCEPT})
        resource_metadata_url = extract_resource_metadata_from_www_auth(challenge)
        challenged_scope = extract_scope_from_www_auth(challenge) if challenge.status_code == 401 else None
        resource = await self._protected_resource(name, resource_metadata_url, url)
        if resource.resource is not None and not _same_resource(str(resource.resource), url):
            # RFC 9728 §3.3: metadata about another resource must not be used for this one.
            raise ServiceUnreachable(f"{name}'s protected-resource metadata describes another server")
        issuer = str(resource.authorization_servers[0]) if resource.authorization_servers else None
        metadata = await self._authorization_server(name, issuer, url)
        scopes = settings.scopes or (challenged_scope.split() if challenged_scope else None)
        if scopes is None and resource.scopes_supported:
            scopes = list(resource.scopes_supported)
        client_id, secret, method = await self._client(name, settings, metadata, scopes or [])
        logger.info("service %s: authorization server %s, client %s", service, metadata.issuer, method)
        return ProviderEndpoints(
            display_name=name,
            authorization_url=str(metadata.authorization_endpoint),
            token_url=str(metadata.token_endpoint),
            client_id=client_id,
            client_secret=secret,
            client_authentication=method,
            scopes=tuple(scopes or ()),
            revocation_url=str(metadata.revocation_endpoint) if metadata.revocation_endpoint else None,
            resource=str(resource.resource) if resource.resource else url,
        )

    async def _protected_resource(self, name: str, named: str | None, url: str) -> ProtectedResourceMetadata:
        for candidate in build_protected_resource_metadata_discovery_urls(named, url):
            response = await self._request(name, "GET", candidate)
            found = await handle_protected_resource_response(response)
            if found is not None:
                return found
        raise ServiceUnreachable(f"{name} does not say which authorization server protects it")

    async def _authorization_server(self, name: str, issuer: str | None, url: str) -> OAuthMetadata:
        for candidate in build_oauth_authorization_server_metadata_discovery_urls(issuer, url):
            response = await self._request(name, "GET", candidate)
            keep_trying, metadata = await handle_auth_metadata_response(response)
            if metadata is not None:
                if issuer is not None and not issuers_match(str(metadata.issuer), issuer):
                    raise ServiceUnreachable(f"{name}'s authorization server names another issuer")
                return metadata
            if not keep_trying:
                break
        raise ServiceUnreachable(f"{name}'s authorization server could not be found")

    # -- the gateway's client ------------------------------------------------------------------

    async def _client(
        self, name: str, settings: MCPOAuthUserAuthentication, metadata: OAuthMetadata, scopes: list[str]
    ) -> tuple[str, str | None, ClientAuthentication]:
        if settings.client_id is not None:
            secret = settings.client_secret.get_secret_value() if settings.client_secret else None
            return settings.client_id, secret, "client_secret_basic" if secret else "none"
        if metadata.client_id_metadata_document_supported and is_valid_client_metadata_url(
            self.client_metadata_url
        ):
            return self.client_metadata_url, None, "none"
        issuer = str(metadata.issuer)
        registered = await self._registration(issuer)
        if registered is None:
            if metadata.registration_endpoint is None:
                raise ServiceUnreachable(
                    f"{name}'s authorization server takes no registrations: configure a clientId for it"
                )
            registered = await self._register(name, str(metadata.registration_endpoint), issuer, scopes)
        method: ClientAuthentication = "client_secret_basic" if registered.client_secret else "none"
        if registered.token_endpoint_auth_method == _POST:
            method = _POST
        return registered.client_id or "", registered.client_secret, method

    async def _registration(self, issuer: str) -> OAuthClientInformationFull | None:
        sealed = await self._store.get(UPSTREAM_CLIENTS_NAMESPACE, digest(issuer).hex())
        if sealed is None:
            return None
        try:
            raw = self._keyring.decrypt(sealed, context=_CONTEXT + issuer.encode())
        except DecryptionError:
            return None
        registered = OAuthClientInformationFull.model_validate_json(raw)
        return (
            registered
            if set(self._redirect_uris()) <= {str(u) for u in registered.redirect_uris or []}
            else None
        )

    async def _register(
        self, name: str, endpoint: str, issuer: str, scopes: list[str]
    ) -> OAuthClientInformationFull:
        body: dict[str, object] = {
            "client_name": f"mcp-front at {urlsplit(self._base_url).netloc}",
            "redirect_uris": self._redirect_uris(),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }
        if scopes:
            # Servers that bind a client to its scopes refuse any it did not register.
            body["scope"] = " ".join(scopes)
        response = await self._request(name, "POST", endpoint, json=body)
        if response.status_code not in (200, 201):
            raise ServiceUnreachable(f"{name}'s authorization server refused to register the gateway")
        try:
            registered = OAuthClientInformationFull.model_validate(_without_issuer(response.json()))
        except ValueError:
            raise ServiceUnreachable(
                f"{name}'s authorization server answered the registration oddly"
            ) from None
        if not registered.client_id:
            raise ServiceUnreachable(f"{name}'s authorization server gave the gateway no client id")
        sealed = self._keyring.encrypt(
            registered.model_dump_json(exclude_none=True).encode(), context=_CONTEXT + issuer.encode()
        )
        await self._store.put(UPSTREAM_CLIENTS_NAMESPACE, digest(issuer).hex(), sealed)
        return registered

    def _redirect_uris(self) -> list[str]:
        return [self._base_url + callback_path(name) for name in sorted(self._services)]

    async def _request(self, name: str, method: str, url: str, **kwargs: object) -> httpx2.Response:
        try:
            return await self._http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx2.HTTPError:
            raise ServiceUnreachable(f"{name} could not be reached") from None


def _initialize() -> dict[str, object]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": dict(GATEWAY_CLIENT_INFO),
        },
    }


def _same_resource(named: str, url: str) -> bool:
    return named.rstrip("/") == url.rstrip("/")


def _without_issuer(body: object) -> object:
    # Which server a registration belongs to is the gateway's record, never the wire's.
    if isinstance(body, dict):
        return {key: value for key, value in body.items() if key != "issuer"}
    return body

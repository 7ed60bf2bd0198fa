"""Finding a hosted MCP server's authorization server, and the gateway's client there, in
the order the issue asks: a configured client, the gateway's client metadata document,
a registration kept per issuer."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from mcp_front.config import ServerConfig
from mcp_front.credentials.mcp_oauth import UPSTREAM_CLIENTS_NAMESPACE, HostedServerAuthorization
from mcp_front.credentials.oauth_connections import ServiceUnreachable
from mcp_front.crypto import Keyring
from mcp_front.storage import MemoryStore

MCP = "https://mcp.hosted.example/v1/mcp"
ISSUER = "https://auth.hosted.example/tenant"
METADATA = "https://mcp.hosted.example/.well-known/oauth-protected-resource/v1/mcp"


def hosted(**settings: Any) -> ServerConfig:
    return ServerConfig.model_validate(
        {
            "transportType": "streamable-http",
            "url": MCP,
            "requiresUserToken": True,
            "userAuthentication": {"type": "mcp-oauth", "displayName": "Hosted", **settings},
            "headers": {"Authorization": {"$userToken": "Bearer {{token}}"}},
        }
    )


class HostedServer:
    """Answers as a hosted MCP server and its authorization server do, counting calls."""

    def __init__(self, *, cimd: bool = False, registration: bool = True, resource: str = MCP) -> None:
        self.cimd = cimd
        self.registration = registration
        self.resource = resource
        self.seen: list[str] = []
        self.registrations: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        url = str(request.url)
        self.seen.append(f"{request.method} {url}")
        if request.method == "POST" and url == MCP:
            challenge = f'Bearer resource_metadata="{METADATA}", scope="read write"'
            return httpx2.Response(401, headers={"WWW-Authenticate": challenge})
        if url == METADATA:
            return httpx2.Response(200, json={"resource": self.resource, "authorization_servers": [ISSUER]})
        if url == "https://auth.hosted.example/.well-known/oauth-authorization-server/tenant":
            metadata: dict[str, Any] = {
                "issuer": ISSUER,
                "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token",
                "revocation_endpoint": f"{ISSUER}/revoke",
                "response_types_supported": ["code"],
                "client_id_metadata_document_supported": self.cimd,
            }
            if self.registration:
                metadata["registration_endpoint"] = f"{ISSUER}/register"
            return httpx2.Response(200, json=metadata)
        if url == f"{ISSUER}/register":
            body = json.loads(request.content)
            self.registrations.append(body)
            return httpx2.Response(
                201, json={**body, "client_id": "registered-1", "client_secret": "registered-secret"}
            )
        return httpx2.Response(404)


def authorization(
    server: HostedServer,
    base_url: str = "https://gw.example",
    store: MemoryStore | None = None,
    **settings: Any,
) -> HostedServerAuthorization:
    return HostedServerAuthorization(
        {"hosted": hosted(**settings)},
        store=store or MemoryStore(),
        keyring=Keyring([bytes(range(32))]),
        base_url=base_url,
        http=httpx2.AsyncClient(transport=httpx2.MockTransport(server)),
    )


async def test_discovery_follows_the_401_and_the_path_inserted_metadata() -> None:
    server = HostedServer()
    endpoints = await authorization(server)("hosted")
    assert endpoints.authorization_url == f"{ISSUER}/authorize"
    assert endpoints.token_url == f"{ISSUER}/token"
    assert endpoints.revocation_url == f"{ISSUER}/revoke"
    assert endpoints.scopes == ("read", "write")  # the 401's scope
    assert endpoints.resource == MCP
    assert server.seen[:3] == [
        f"POST {MCP}",
        "GET https://mcp.hosted.example/.well-known/oauth-protected-resource/v1/mcp",
        "GET https://auth.hosted.example/.well-known/oauth-authorization-server/tenant",
    ]


async def test_a_configured_client_comes_first() -> None:
    server = HostedServer(cimd=True)
    endpoints = await authorization(server, clientId="by-hand", clientSecret="s3cret")("hosted")
    assert (endpoints.client_id, endpoints.client_secret) == ("by-hand", "s3cret")
    assert endpoints.client_authentication == "client_secret_basic"
    assert server.registrations == []


async def test_then_the_gateways_client_metadata_document_over_https() -> None:
    server = HostedServer(cimd=True)
    found = authorization(server)
    endpoints = await found("hosted")
    assert endpoints.client_id == "https://gw.example/oauth/client-metadata.json"
    assert endpoints.client_authentication == "none"
    assert found.client_metadata()["redirect_uris"] == ["https://gw.example/oauth/callback/hosted"]
    assert server.registrations == []


async def test_then_a_registration_kept_sealed_per_issuer() -> None:
    store = MemoryStore()
    server = HostedServer(cimd=True)
    endpoints = await authorization(server, base_url="http://127.0.0.1:9", store=store)("hosted")
    assert (endpoints.client_id, endpoints.client_secret) == ("registered-1", "registered-secret")
    (registration,) = server.registrations
    assert registration["redirect_uris"] == ["http://127.0.0.1:9/oauth/callback/hosted"]
    assert registration["scope"] == "read write"
    (stored,) = await store.scan(UPSTREAM_CLIENTS_NAMESPACE)
    assert b"registered-secret" not in stored[1]
    # Another process of the gateway (a restart) reuses it.
    again = await authorization(server, base_url="http://127.0.0.1:9", store=store)("hosted")
    assert again.client_id == "registered-1"
    assert len(server.registrations) == 1


async def test_no_way_to_register_says_what_to_configure_and_is_not_retried_at_once() -> None:
    server = HostedServer(registration=False)
    found = authorization(server, base_url="http://127.0.0.1:9")
    with pytest.raises(ServiceUnreachable, match="takes no registrations: configure a clientId"):
        await found("hosted")
    calls = len(server.seen)
    with pytest.raises(ServiceUnreachable):
        await found("hosted")
    assert len(server.seen) == calls


async def test_metadata_about_another_resource_is_refused() -> None:
    server = HostedServer(resource="https://elsewhere.example/mcp")
    with pytest.raises(ServiceUnreachable, match="describes another server"):
        await authorization(server)("hosted")

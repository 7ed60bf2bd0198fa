"""docs/http-api.md documents every route of a fully configured gateway, and only those.

The gateway is built with everything that adds routes: `proxy.auth` with an OIDC identity
provider, `proxy.metrics`, a service of each kind, and services taking each kind of user
credential. Its routes are read from the app (each `Route`'s path and methods), and the
endpoints below each service's mount are asked of the service itself: the `404` for an
unknown endpoint names those it has, and a `405` names, in `Allow`, the methods of each.
The page documents an endpoint in a `###` heading holding `METHOD[, METHOD] /path` in
backticks, paths relative to the base URL with `{service}` for a service's name.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from mcp_front import create_app

PAGE = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"
ENDPOINT = re.compile(r"`((?:GET|POST|DELETE|PUT|PATCH)(?:, (?:GET|POST|DELETE|PUT|PATCH))*) (/[^`\s]*)`")
SERVICE_ENDPOINTS = re.compile(r"has ((?:/\w+(?:, | and )?)+)$")
PROBE_USER, PROBE_PASSWORD = "route-probe", "route-probe-password"
Endpoint = tuple[str, str]


def configuration(base_url: str) -> dict[str, Any]:
    """A gateway at `base_url` with every part that serves routes of its own."""
    probe = [{"type": "basic", "username": PROBE_USER, "password": PROBE_PASSWORD}]
    return {
        "proxy": {
            "baseURL": base_url,
            "addr": "127.0.0.1:0",
            "metrics": {"token": "metrics-token-0123456789"},
            "auth": {
                "kind": "oauth",
                "issuer": base_url,
                "idp": {
                    "provider": "oidc",
                    "clientId": "gateway",
                    "clientSecret": "gateway-secret",
                    "redirectUri": f"{base_url}/oauth/callback",
                    "discoveryUrl": "https://idp.example.com/.well-known/openid-configuration",
                },
                "allowedDomains": ["example.com"],
                "encryptionKey": "k" * 32,
                "storage": "memory",
            },
        },
        "mcpServers": {
            "files": {"transportType": "stdio", "command": "true", "serviceAuths": probe},
            "notion": {
                "transportType": "streamable-http",
                "url": "http://127.0.0.1:9/mcp",
                "requiresUserToken": True,
                "userAuthentication": {
                    "type": "manual",
                    "displayName": "Notion",
                    "instructions": "Paste it.",
                },
                "serviceAuths": probe,
            },
            "linear": {
                "transportType": "sse",
                "url": "http://127.0.0.1:9/sse",
                "requiresUserToken": True,
                "userAuthentication": {
                    "type": "oauth",
                    "displayName": "Linear",
                    "clientId": "linear-client",
                    "clientSecret": "linear-secret",
                    "authorizationUrl": "https://linear.example.com/oauth/authorize",
                    "tokenUrl": "https://linear.example.com/oauth/token",
                    "scopes": ["read"],
                },
                "serviceAuths": probe,
            },
            "sentry": {
                "transportType": "streamable-http",
                "url": "https://sentry.example.com/mcp",
                "requiresUserToken": True,
                "userAuthentication": {"type": "mcp-oauth", "displayName": "Sentry"},
                "serviceAuths": probe,
            },
            "ops": {
                "transportType": "inline",
                "inline": {"tools": [{"name": "hello", "command": "echo", "args": ["hello"]}]},
                "serviceAuths": probe,
            },
            "everything": {"type": "aggregate", "servers": ["files", "ops"], "serviceAuths": probe},
        },
    }


def documented() -> set[Endpoint]:
    """(method, path) of every endpoint heading of the page, fenced blocks left out."""
    endpoints: set[Endpoint] = set()
    fenced = False
    for line in PAGE.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("### "):
            for methods, path in ENDPOINT.findall(line):
                endpoints.update((method, path) for method in methods.split(", "))
    return endpoints


def generic(path: str, services: set[str], base_path: str) -> str:
    """`path` as the page writes it: service names as `{service}`, and the base path taken
    out of the documents that live at the host's root."""
    if base_path and path.startswith("/.well-known/"):
        path = path.replace(base_path, "", 1)
    return "/".join("{service}" if part in services else part for part in path.split("/"))


async def served(app: Starlette, base_path: str) -> set[Endpoint]:
    """(method, path) of every route the app serves, HEAD left out (Starlette adds it to every GET)."""
    services = {route.path.strip("/") for route in app.routes if isinstance(route, Mount)}
    endpoints: set[Endpoint] = set()
    for route in app.routes:
        if isinstance(route, Route):
            path = generic(route.path, services, base_path)
            endpoints.update((method, path) for method in route.methods or () if method != "HEAD")
        elif isinstance(route, Mount):
            for method, suffix in await service_endpoints(app, base_path, route.path.strip("/")):
                endpoints.add((method, f"/{{service}}{suffix}"))
    return endpoints


async def service_endpoints(app: Starlette, base_path: str, service: str) -> set[Endpoint]:
    """What the service's own 404 says it has, each with the methods its 405 allows."""
    credentials = base64.b64encode(f"{PROBE_USER}:{PROBE_PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        unknown = await http.get(f"{base_path}/{service}/no-such-endpoint", headers=headers)
        assert unknown.status_code == 404, unknown.text
        listed = SERVICE_ENDPOINTS.search(unknown.json()["error"]["message"])
        assert listed is not None, unknown.text
        endpoints: set[Endpoint] = set()
        for suffix in re.findall(r"/\w+", listed[1]):
            refused = await http.request("PATCH", f"{base_path}/{service}{suffix}", headers=headers)
            assert refused.status_code == 405, f"{service}{suffix}: {refused.status_code} {refused.text}"
            methods = {method.strip() for method in refused.headers["allow"].split(",")}
            endpoints.update((method, suffix) for method in methods)
    return endpoints


def differences(documented: set[Endpoint], served: set[Endpoint]) -> Iterator[str]:
    for method, path in sorted(served - documented):
        yield f"served but not documented in {PAGE.name}: {method} {path}"
    for method, path in sorted(documented - served):
        yield f"documented in {PAGE.name} but not served: {method} {path}"


@pytest.mark.parametrize(
    ("base_url", "base_path"),
    [("https://mcp.example.com", ""), ("https://example.com/mcp-gw", "/mcp-gw")],
    ids=["at the root", "under a base path"],
)
async def test_every_route_is_documented_and_every_documented_route_served(
    base_url: str, base_path: str
) -> None:
    app = create_app(configuration(base_url))
    problems = list(differences(documented(), await served(app, base_path)))
    assert not problems, "\n".join(problems)


def test_the_documents_at_the_hosts_root_are_documented_with_the_base_path() -> None:
    app = create_app(configuration("https://example.com/mcp-gw"))
    page = PAGE.read_text()
    moved = {
        re.sub(r"/mcp-gw(?:/[^/]+)?(/mcp|/sse)?$", "", route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/.well-known/") and "/mcp-gw" in route.path
    }
    assert moved == {
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-protected-resource",
    }
    for document in moved:
        assert f"`{document}{{base}}" in page, f"{document}{{base}} is not explained in {PAGE.name}"


def test_the_parser_finds_endpoints_in_headings_only() -> None:
    endpoints = documented()
    assert ("POST", "/token") in endpoints
    assert ("DELETE", "/{service}/mcp") in endpoints
    assert ("GET", "/.well-known/oauth-protected-resource/{service}/sse") in endpoints
    # The example exchanges hold request lines too; they are not headings.
    assert ("GET", "/nope") not in endpoints

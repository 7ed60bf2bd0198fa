"""Configurations written for the Go mcp-front load unchanged: every key its published
files use, those that do nothing here named with a warning, refusals only where a Go file
is wrong or asks for what cannot be had here.

The documents are written for these tests, after the keys of the Go project's example and
integration configurations (`config*.json`, `integration/config/*.json`).
"""

from __future__ import annotations

from typing import Any

import pytest

from mcp_front.config import ConfigError, load_config
from mcp_front.config.compatibility import inert_keys

ENVIRONMENT = {
    "BASE_URL": "https://mcp.example.com",
    "ADDR": ":8080",
    "OAUTH_ISSUER": "https://mcp.example.com",
    "GCP_PROJECT": "my-project",
    "GOOGLE_CLIENT_ID": "client-id.apps.example",
    "GOOGLE_CLIENT_SECRET": "google-secret",
    "GOOGLE_REDIRECT_URI": "https://mcp.example.com/oauth/callback",
    "JWT_SECRET": "j" * 40,
    "ENCRYPTION_KEY": "e" * 32,
    "NOTION_TOKEN": "secret_notion",
    "POSTGRES_URL": "postgresql://u:p@db/app",
    "SERVICE_CLIENT_ID": "svc-id",
    "SERVICE_CLIENT_SECRET": "svc-secret",
}


def google_auth(**keys: Any) -> dict[str, Any]:
    return {
        "kind": "oauth",
        "issuer": {"$env": "OAUTH_ISSUER"},
        "gcpProject": {"$env": "GCP_PROJECT"},
        "idp": {
            "provider": "google",
            "clientId": {"$env": "GOOGLE_CLIENT_ID"},
            "clientSecret": {"$env": "GOOGLE_CLIENT_SECRET"},
            "redirectUri": {"$env": "GOOGLE_REDIRECT_URI"},
        },
        "allowedDomains": ["example.com", "contractors.example.com"],
        "allowedOrigins": ["https://claude.ai"],
        "tokenTtl": "24h",
        "storage": "memory",
        "jwtSecret": {"$env": "JWT_SECRET"},
        "encryptionKey": {"$env": "ENCRYPTION_KEY"},
        **keys,
    }


def document(auth: dict[str, Any] | None, servers: dict[str, Any], **proxy: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "baseURL": {"$env": "BASE_URL"},
        "addr": {"$env": "ADDR"},
        "name": "mcp-front",
        **proxy,
    }
    if auth is not None:
        body["auth"] = auth
    return {"version": "v0.0.1-DEV_EDITION_EXPECT_CHANGES", "proxy": body, "mcpServers": servers}


DOCKER = {"transportType": "stdio", "command": "docker", "args": ["run", "--rm", "-i", "mcp/git"]}

GO_STYLE_DOCUMENTS: dict[str, dict[str, Any]] = {
    "oauth with a GCP project": document(
        google_auth(),
        {
            "postgres": {**DOCKER, "env": {"POSTGRES_URL": {"$env": "POSTGRES_URL"}}},
            "notion": {**DOCKER, "env": {"NOTION_TOKEN": {"$env": "NOTION_TOKEN"}}},
        },
    ),
    "user tokens, manual and oauth": document(
        google_auth(allowedRedirectUriHosts=["https://claude.ai"], refreshTokenTtl="720h"),
        {
            "notion": {
                **DOCKER,
                "env": {"OPENAPI_MCP_HEADERS": {"$userToken": '{"Authorization": "Bearer {{token}}"}'}},
                "requiresUserToken": True,
                "userAuthentication": {
                    "type": "manual",
                    "displayName": "Notion",
                    "instructions": "Create an integration and copy its token",
                    "helpUrl": "https://developers.notion.com",
                    "validation": "^secret_[a-zA-Z0-9]{43}$",
                },
            },
            "service": {
                "transportType": "sse",
                "url": "http://localhost:3001/sse",
                "headers": {"Authorization": {"$userToken": "Bearer {{token}}"}},
                "requiresUserToken": True,
                "userAuthentication": {
                    "type": "oauth",
                    "displayName": "Service",
                    "clientId": {"$env": "SERVICE_CLIENT_ID"},
                    "clientSecret": {"$env": "SERVICE_CLIENT_SECRET"},
                    "authorizationUrl": "http://localhost:9091/oauth/authorize",
                    "tokenUrl": "http://localhost:9091/oauth/token",
                    "scopes": ["read", "write"],
                },
            },
        },
    ),
    "an identity provider with explicit endpoints": document(
        google_auth(
            idp={
                "provider": "google",
                "clientId": {"$env": "GOOGLE_CLIENT_ID"},
                "clientSecret": {"$env": "GOOGLE_CLIENT_SECRET"},
                "redirectUri": "http://localhost:8080/oauth/callback",
                "authorizationUrl": "http://localhost:9090/auth",
                "tokenUrl": "http://localhost:9090/token",
                "userInfoUrl": "http://localhost:9090/userinfo",
            },
            issuer="http://localhost:8080",
            gcpProject="test-project",
        ),
        {
            "sse": {"transportType": "sse", "url": "http://localhost:3001/sse"},
            "streamable": {"transportType": "streamable-http", "url": "http://localhost:3002"},
        },
        baseURL="http://localhost:8080",
        addr=":8080",
    ),
    "the first schema, with flat Google keys": {
        "version": "v0.0.1",
        "proxy": {
            "baseURL": "https://mcp.example.com",
            "addr": ":8080",
            "auth": {
                "kind": "oauth",
                "issuer": "https://mcp.example.com",
                "gcpProject": "test-project",
                "allowedDomains": ["example.com"],
                "googleClientId": {"$env": "GOOGLE_CLIENT_ID"},
                "googleClientSecret": {"$env": "GOOGLE_CLIENT_SECRET"},
                "googleRedirectUri": "https://mcp.example.com/oauth/callback",
                "jwtSecret": {"$env": "JWT_SECRET"},
                "encryptionKey": {"$env": "ENCRYPTION_KEY"},
            },
        },
        "mcpServers": {
            "postgres": {**DOCKER, "args": ["run", "-i", "mcp/postgres", {"$env": "POSTGRES_URL"}]}
        },
    },
    "static tokens, a base path, logging option": document(
        None,
        {
            "postgres": {
                **DOCKER,
                "options": {"logEnabled": True},
                "serviceAuths": [{"type": "bearer", "name": "svc", "tokens": ["test-token", "demo-token"]}],
            },
            "git": {**DOCKER, "serviceAuths": [{"type": "bearer", "tokens": ["git-token"]}]},
        },
        baseURL="http://localhost:8080/mcp-api",
    ),
    "inline tools": document(
        google_auth(allowedRedirectUriHosts=["https://claude.ai"]),
        {
            "tools": {
                "transportType": "inline",
                "inline": {
                    "description": "Test tools",
                    "tools": [
                        {
                            "name": "echo",
                            "description": "Echo a message",
                            "inputSchema": {
                                "type": "object",
                                "properties": {"message": {"type": "string", "description": "Message"}},
                                "required": ["message"],
                            },
                            "command": "echo",
                            "args": [{"$env": "NOTION_TOKEN"}],
                        },
                        {
                            "name": "env_test",
                            "description": "Environment",
                            "inputSchema": {"type": "object", "properties": {}, "required": []},
                            "command": "printenv",
                            "args": [],
                            "env": {"TEST_VAR": "value", "OTHER_VAR": {"$env": "NOTION_TOKEN"}},
                            "timeout": "100ms",
                        },
                    ],
                },
                "serviceAuths": [{"type": "bearer", "name": "svc", "tokens": ["inline-token"]}],
            }
        },
    ),
    "admin pages": document(
        google_auth(),
        {"example": {"transportType": "stdio", "command": "echo", "args": ["hello"]}},
        admin={"enabled": True, "adminEmails": ["admin@example.com"]},
    ),
}


@pytest.mark.parametrize("name", GO_STYLE_DOCUMENTS)
def test_a_go_configuration_loads_unchanged(name: str) -> None:
    config = load_config(GO_STYLE_DOCUMENTS[name], environ=ENVIRONMENT)
    assert config.mcp_servers


def warnings_of(doc: dict[str, Any]) -> dict[str, str]:
    config = load_config(doc, environ=ENVIRONMENT)
    return {issue.path: str(issue) for issue in inert_keys(config)}


def test_every_key_that_does_nothing_here_is_named() -> None:
    found = {}
    for doc in GO_STYLE_DOCUMENTS.values():
        found |= warnings_of(doc)
    assert set(found) >= {
        "proxy.auth.gcpProject",
        "proxy.auth.jwtSecret",
        "proxy.admin",
        "mcpServers.postgres.options.logEnabled",
    }
    assert "Firestore" in found["proxy.auth.gcpProject"]
    for line in found.values():
        assert "—" in line  # every warning says what to do


def test_firestore_keys_without_firestore_are_named() -> None:
    doc = document(google_auth(firestoreDatabase="(default)", firestoreCollection="mcp"), {"git": DOCKER})
    assert {"proxy.auth.firestoreDatabase", "proxy.auth.firestoreCollection"} <= set(warnings_of(doc))


def test_auth_tokens_are_named_as_protecting_nothing() -> None:
    doc = document(None, {"git": {**DOCKER, "options": {"authTokens": ["legacy-token"]}}})
    warning = warnings_of(doc)["mcpServers.git.options.authTokens"]
    assert "serviceAuths" in warning
    assert "legacy-token" not in warning


def test_dangerously_accept_issuer_audience_is_resource_fallback() -> None:
    for value in (True, False):
        doc = document(google_auth(dangerouslyAcceptIssuerAudience=value), {"git": DOCKER})
        config = load_config(doc, environ=ENVIRONMENT)
        assert config.proxy.auth is not None
        assert config.proxy.auth.resource_fallback is value
    conflicting = document(
        google_auth(dangerouslyAcceptIssuerAudience=True, resourceFallback=False), {"git": DOCKER}
    )
    with pytest.raises(ConfigError, match="dangerouslyAcceptIssuerAudience"):
        load_config(conflicting, environ=ENVIRONMENT)


def test_redirect_uri_hosts_unset_on_https_is_named_and_set_is_not() -> None:
    unset = warnings_of(document(google_auth(), {"git": DOCKER}))
    assert "proxy.auth.allowedRedirectUriHosts" in unset
    listed = warnings_of(
        document(google_auth(allowedRedirectUriHosts=["https://claude.ai"]), {"git": DOCKER})
    )
    assert "proxy.auth.allowedRedirectUriHosts" not in listed
    anything = warnings_of(document(google_auth(allowAnyRedirectUriHost=True), {"git": DOCKER}))
    assert "proxy.auth.allowedRedirectUriHosts" not in anything


@pytest.mark.parametrize(
    ("auth", "servers", "path", "needle"),
    [
        (google_auth(storage="firestore"), {"git": DOCKER}, "proxy.auth.storage", "Firestore"),
        (
            google_auth(),
            {
                "notion": {
                    **DOCKER,
                    "env": {"T": {"$userToken": "{{token}}"}},
                    "requiresUserToken": True,
                    "userAuthentication": {
                        "type": "manual",
                        "displayName": "Notion",
                        "instructions": "Paste it",
                        "tokenFormat": "^secret_[a-zA-Z0-9]{43}$",
                    },
                },
            },
            "mcpServers.notion.userAuthentication.tokenFormat",
            "{{token}}",
        ),
    ],
)
def test_refusals_say_what_to_change(
    auth: dict[str, Any], servers: dict[str, Any], path: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(document(auth, servers), environ=ENVIRONMENT)
    [issue] = raised.value.issues
    assert issue.path == path
    assert needle in str(issue)
    assert issue.fix

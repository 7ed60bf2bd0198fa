from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mcp_front.config import (
    AuthConfig,
    MemoryStorage,
    RedisStorage,
    SQLiteStorage,
    load_config,
)

from .support import problems

ENVIRON = {
    "GOOGLE_CLIENT_SECRET": "google-client-secret-value",
    "JWT_SECRET": "j" * 40,
    "ENCRYPTION_KEY": "k" * 32,
}


def _auth(**keys: Any) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "kind": "oauth",
        "issuer": "https://mcp.example.com",
        "idp": {
            "provider": "google",
            "clientId": "client-id",
            "clientSecret": {"$env": "GOOGLE_CLIENT_SECRET"},
            "redirectUri": "https://mcp.example.com/oauth/callback",
        },
        "allowedDomains": ["example.com"],
        "jwtSecret": {"$env": "JWT_SECRET"},
        "encryptionKey": {"$env": "ENCRYPTION_KEY"},
    }
    return auth | keys


def _load_auth(auth: dict[str, Any]) -> AuthConfig:
    config = load_config({"proxy": {"auth": auth}}, environ=ENVIRON)
    assert config.proxy.auth is not None
    return config.proxy.auth


def test_the_go_auth_block_is_read_with_its_defaults() -> None:
    auth = _load_auth(_auth(allowedOrigins=["https://claude.ai"], tokenTtl="4h"))

    assert auth.idp.provider == "google"
    assert auth.idp.client_secret.get_secret_value() == ENVIRON["GOOGLE_CLIENT_SECRET"]
    assert auth.token_ttl == timedelta(hours=4)
    assert auth.refresh_token_ttl == timedelta(days=30)
    assert auth.storage == SQLiteStorage(path="mcp-front.sqlite3")
    assert auth.allowed_origins == ["https://claude.ai"]


def test_the_older_flat_google_keys_become_an_idp_block() -> None:
    auth = _auth(
        googleClientId="legacy-id",
        googleClientSecret={"$env": "GOOGLE_CLIENT_SECRET"},
        googleRedirectUri="https://mcp.example.com/oauth/callback",
    )
    del auth["idp"]

    idp = _load_auth(auth).idp

    assert (idp.provider, idp.client_id, idp.redirect_uri) == (
        "google",
        "legacy-id",
        "https://mcp.example.com/oauth/callback",
    )


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ("memory", MemoryStorage()),
        ("sqlite", SQLiteStorage()),
        (
            {"kind": "sqlite", "path": "/var/lib/mcp-front/state.db"},
            SQLiteStorage(path="/var/lib/mcp-front/state.db"),
        ),
    ],
)
def test_storage_takes_a_kind_or_a_block(storage: object, expected: object) -> None:
    assert _load_auth(_auth(storage=storage)).storage == expected


def test_redis_storage_keeps_its_url_secret() -> None:
    environ = ENVIRON | {"REDIS_URL": "redis://:hunter2@redis:6379/0"}
    config = load_config(
        {"proxy": {"auth": _auth(storage={"kind": "redis", "url": {"$env": "REDIS_URL"}})}}, environ=environ
    )

    assert config.proxy.auth is not None
    assert isinstance(config.proxy.auth.storage, RedisStorage)
    assert "hunter2" not in repr(config)


def test_firestore_is_refused_with_the_alternatives() -> None:
    assert problems({"proxy": {"auth": _auth(storage="firestore")}}, ENVIRON) == [
        "proxy.auth.storage: Firestore storage is not supported"
        ' — use "sqlite" (the default), or {"kind": "redis", "url": ...} for several replicas'
    ]


def test_secrets_must_have_the_right_length_and_the_report_does_not_quote_them() -> None:
    environ = ENVIRON | {"JWT_SECRET": "short-jwt-secret", "ENCRYPTION_KEY": "not-32-bytes"}

    report = problems({"proxy": {"auth": _auth()}}, environ)

    assert report == [
        "proxy.auth.jwtSecret: must be at least 32 bytes long — generate one with: openssl rand -base64 32",
        "proxy.auth.encryptionKey: must be exactly 32 bytes: 32 characters, 64 hex digits, or the base64"
        " of 32 bytes — generate one with: openssl rand -base64 32",
    ]


def test_sign_in_must_be_restricted() -> None:
    auth = _auth()
    del auth["allowedDomains"]

    assert problems({"proxy": {"auth": auth}}, ENVIRON) == [
        "proxy.auth.allowedDomains: nobody is restricted from signing in"
        ' — list your email domains, e.g. ["example.com"], or set allowedEmails, allowedGroups,'
        " or idp.allowedOrgs for GitHub"
    ]


def test_the_authorization_server_keys_are_read() -> None:
    auth = _load_auth(
        _auth(
            allowedEmails=["guest@partner.io"],
            allowedGroups=["mcp-users"],
            requireVerifiedEmail=False,
            trustedClients=["https://claude.ai/oauth/mcp-oauth-client-metadata"],
            resourceFallback=True,
            previousEncryptionKeys=["0" * 64],
        )
    )
    assert auth.allowed_emails == ["guest@partner.io"]
    assert auth.allowed_groups == ["mcp-users"]
    assert auth.require_verified_email is False
    assert auth.trusted_clients == ["https://claude.ai/oauth/mcp-oauth-client-metadata"]
    assert auth.resource_fallback is True
    assert auth.signing_key is None
    assert auth.idp.groups_claim == "groups"


def test_each_provider_gets_what_it_needs() -> None:
    auth = _auth()
    auth["idp"] = auth["idp"] | {"provider": "oidc", "allowedOrgs": ["acme"]}

    assert problems({"proxy": {"auth": auth}}, ENVIRON) == [
        'proxy.auth.idp.allowedOrgs: is only used with "provider": "github" — remove it',
        "proxy.auth.idp.authorizationUrl: is required for OIDC without a discoveryUrl"
        ' — or add "discoveryUrl"',
        'proxy.auth.idp.tokenUrl: is required for OIDC without a discoveryUrl — or add "discoveryUrl"',
        'proxy.auth.idp.userInfoUrl: is required for OIDC without a discoveryUrl — or add "discoveryUrl"',
    ]


def test_an_unknown_provider_is_reported_with_the_known_ones() -> None:
    auth = _auth()
    auth["idp"] = auth["idp"] | {"provider": "gogle"}

    assert problems({"proxy": {"auth": auth}}, ENVIRON) == [
        'proxy.auth.idp.provider: unknown value "gogle"; expected one of "google", "azure", "github", "oidc"'
        ' — did you mean "google"?'
    ]


def test_allowed_domains_are_lowercased_and_checked() -> None:
    assert _load_auth(_auth(allowedDomains=["Example.COM"])).allowed_domains == ["example.com"]
    assert problems({"proxy": {"auth": _auth(allowedDomains=["@example.com"])}}, ENVIRON) == [
        'proxy.auth.allowedDomains[0]: must be an email domain, got "@example.com"'
        ' — for example "example.com"'
    ]

"""The registration rules: which metadata a client may register with."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_front.auth.redirect_uris import InvalidRedirectUri, RedirectUriRules, check_redirect_uri
from mcp_front.auth.rfc7591 import RegistrationError, validate_client_metadata


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com:8443/cb?x=1",
        "http://127.0.0.1:33418/callback",
        "http://[::1]:8080/cb",
        "http://localhost:3000/callback",
        "http://127.0.0.1:33418",
        "com.example.app:/oauth2redirect",
        "com.example.app://callback",
        "io.github.some-app.desktop:/cb",
        "cursor://anysphere.cursor-mcp/oauth/callback",
    ],
)
def test_accepted_redirect_uris(uri: str) -> None:
    assert str(check_redirect_uri(uri)) == uri


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://app.example.com/callback", "non-loopback"),
        ("http://127.0.0.2.nip.io/cb", "non-loopback"),
        ("https://app.example.com/cb#frag", "fragment"),
        ("javascript:alert(1)", "not allowed"),
        ("JavaScript:alert(1)", "not allowed"),
        ("data:text/html,hi", "not allowed"),
        ("file:///etc/passwd", "not allowed"),
        ("vbscript:msgbox", "not allowed"),
        ("/relative/callback", "absolute"),
        ("https://user:pw@app.example.com/cb", "credentials"),
        ("https://app.example.com/a b", "whitespace"),
        ("", "non-empty"),
        ("https://" + "a" * 3000 + ".com/", "longer"),
        # RFC 8252 §7.1: a private-use scheme is a reverse domain name; this is an allow rule.
        ("claude://callback", "reverse domain"),
        ("myapp://cb", "reverse domain"),
        ("chrome://settings", "reverse domain"),
        ("ms-settings:privacy", "reverse domain"),
        ("ws://127.0.0.1:5/cb", "reverse domain"),
        ("com.-bad.app:/cb", "reverse domain"),
        # Compared later as exact strings: only a URI in its normal form can be registered.
        ("http://LOCALHOST/cb", "normal form"),
        ("HTTPS://app.example.com/cb", "normal form"),
        ("https://App.example.com/cb", "normal form"),
        ("https://app.example.com:443/cb", "normal form"),
        ("https://app.example.com/x/../cb", "normal form"),
        ("http://127.1:5555/cb", "normal form"),
        ("https://app.example.com/\u202ecb", "control"),
    ],
)
def test_refused_redirect_uris(uri: str, reason: str) -> None:
    with pytest.raises(InvalidRedirectUri) as caught:
        check_redirect_uri(uri)
    assert reason in str(caught.value)
    with pytest.raises(RegistrationError) as refused:
        validate_client_metadata({"redirect_uris": ["https://a.example/cb", uri]})
    assert refused.value.error == "invalid_redirect_uri"
    assert reason in refused.value.description


def test_minimal_registration_takes_defaults() -> None:
    metadata = validate_client_metadata({"redirect_uris": ["http://localhost:1234/cb"]})
    assert metadata.grant_types == ["authorization_code", "refresh_token"]
    assert metadata.response_types == ["code"]
    assert metadata.token_endpoint_auth_method == "client_secret_basic"
    assert metadata.application_type == "native"
    assert metadata.scope is None


def test_claude_style_registration() -> None:
    metadata = validate_client_metadata(
        {
            "client_name": "Claude",
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "web",
            "scope": None,
        }
    )
    assert metadata.token_endpoint_auth_method == "none"
    assert [str(u) for u in metadata.redirect_uris or []] == [
        "https://claude.ai/api/mcp/auth_callback",
    ]


def test_private_use_schemes_can_be_allowed_by_name() -> None:
    rules = RedirectUriRules(private_use_schemes=frozenset({"claude"}))
    assert str(check_redirect_uri("claude://callback", rules)) == "claude://callback"
    with pytest.raises(InvalidRedirectUri, match="reverse domain"):
        check_redirect_uri("cursor://anysphere.cursor-mcp/oauth/callback", rules)


@pytest.mark.parametrize(
    ("allowed", "uri", "accepted"),
    [
        (("https://claude.ai",), "https://claude.ai/api/mcp/auth_callback", True),
        (("https://claude.ai",), "https://claude.ai:8443/cb", True),
        (("https://claude.ai",), "https://evil.example/cb", False),
        (("https://claude.ai",), "https://claude.ai.evil.example/cb", False),
        (("https://app.example.com:8443",), "https://app.example.com/cb", False),
        (("https://app.example.com:8443",), "https://app.example.com:8443/cb", True),
        (("app.example.com",), "https://app.example.com/cb", True),
        # As in the Go mcp-front, the list covers every scheme, loopback http excepted.
        (("https://claude.ai",), "http://127.0.0.1:5/cb", True),
        (("https://claude.ai",), "http://localhost/cb", True),
        (("https://claude.ai",), "com.example.app:/cb", False),
        (("https://claude.ai",), "cursor://anysphere.cursor-mcp/oauth/callback", False),
        (("cursor://anysphere.cursor-mcp",), "cursor://anysphere.cursor-mcp/oauth/callback", True),
        (("HTTPS://Claude.AI",), "https://claude.ai/cb", True),
    ],
)
def test_allowed_redirect_hosts(allowed: tuple[str, ...], uri: str, accepted: bool) -> None:
    rules = RedirectUriRules(allowed_hosts=allowed)
    if accepted:
        check_redirect_uri(uri, rules)
    else:
        with pytest.raises(InvalidRedirectUri, match="allowedRedirectUriHosts"):
            check_redirect_uri(uri, rules)


def test_unsupported_metadata_is_dropped_and_what_is_kept_is_bounded() -> None:
    metadata = validate_client_metadata(
        {
            "redirect_uris": ["https://a.example/cb"],
            "client_name": "App",
            "jwks": {"keys": [{"kty": "RSA", "n": "x" * 40000}]},
            "jwks_uri": "https://a.example/jwks",
            "unknown_member": "y" * 40000,
            "software_id": "app-1",
            "contacts": ["ops@a.example"],
            "logo_uri": "https://a.example/logo.png",
        }
    )
    kept = metadata.model_dump(exclude_none=True, mode="json")
    assert "jwks" not in kept
    assert "jwks_uri" not in kept
    assert "unknown_member" not in kept
    assert kept["software_id"] == "app-1"
    assert kept["contacts"] == ["ops@a.example"]
    assert kept["logo_uri"] == "https://a.example/logo.png"


@pytest.mark.parametrize(
    "name",
    [
        "Claude\nINFO forged line",
        "App\u202eexe.txt",
        "A\x1b[31mred",
        "Tab\there",
        "Iso\u2066late",
        "Z\u200fW",
    ],
)
def test_client_name_with_control_or_bidi_characters_is_refused(name: str) -> None:
    with pytest.raises(RegistrationError) as caught:
        validate_client_metadata({"redirect_uris": ["https://a.example/cb"], "client_name": name})
    assert caught.value.error == "invalid_client_metadata"
    assert "control or bidirectional" in caught.value.description


@pytest.mark.parametrize(
    ("change", "error", "needle"),
    [
        ({"redirect_uris": []}, "invalid_redirect_uri", "redirect_uris is required"),
        ({"redirect_uris": None}, "invalid_redirect_uri", "redirect_uris is required"),
        ({"redirect_uris": "https://a.example/cb"}, "invalid_client_metadata", "array of strings"),
        ({"grant_types": ["client_credentials"]}, "invalid_client_metadata", "client_credentials"),
        ({"grant_types": ["implicit", "authorization_code"]}, "invalid_client_metadata", "implicit"),
        ({"grant_types": ["refresh_token"]}, "invalid_client_metadata", "must include authorization_code"),
        ({"response_types": ["token"]}, "invalid_client_metadata", "response_types"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata", "private_key_jwt"),
        ({"application_type": "desktop"}, "invalid_client_metadata", "application_type"),
        ({"scope": 5}, "invalid_client_metadata", "scope"),
        ({"scope": 'a "b'}, "invalid_client_metadata", "scope"),
        ({"client_name": "x" * 500}, "invalid_client_metadata", "client_name"),
        ({"client_uri": "not a url"}, "invalid_client_metadata", "client_uri"),
        ({"logo_uri": "http://a.example/x.png"}, "invalid_client_metadata", "logo_uri"),
        ({"contacts": ["a@b.example"] * 6}, "invalid_client_metadata", "contacts"),
        ({"software_version": "v" * 500}, "invalid_client_metadata", "software_version"),
    ],
)
def test_refused_metadata(change: dict[str, Any], error: str, needle: str) -> None:
    data = {"redirect_uris": ["https://a.example/cb"], **change}
    with pytest.raises(RegistrationError) as caught:
        validate_client_metadata(data)
    assert caught.value.error == error
    assert needle in caught.value.description


def test_not_an_object() -> None:
    with pytest.raises(RegistrationError, match="JSON object"):
        validate_client_metadata(["https://a.example/cb"])


def test_only_public_methods_when_restricted() -> None:
    only_none = frozenset({"none"})
    metadata = validate_client_metadata(
        {"redirect_uris": ["https://a.example/cb"]}, allowed_auth_methods=only_none
    )
    assert metadata.token_endpoint_auth_method == "none"
    with pytest.raises(RegistrationError, match="client_secret_post"):
        validate_client_metadata(
            {"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_post"},
            allowed_auth_methods=only_none,
        )


def test_duplicates_and_scope_are_normalised() -> None:
    metadata = validate_client_metadata(
        {"redirect_uris": ["https://a.example/cb", "https://a.example/cb"], "scope": "  b a b "}
    )
    assert len(metadata.redirect_uris or []) == 1
    assert metadata.scope == "b a"

"""The registration rules: which metadata a client may register with."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_front.auth.registration import RegistrationError, check_redirect_uri, validate_client_metadata


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com:8443/cb?x=1",
        "http://127.0.0.1:33418/callback",
        "http://[::1]:8080/cb",
        "http://localhost:3000/callback",
        "http://LOCALHOST/cb",
        "claude://callback",
        "com.example.app:/oauth2redirect",
        "cursor://anysphere.cursor-retrieval/oauth/callback",
    ],
)
def test_accepted_redirect_uris(uri: str) -> None:
    check_redirect_uri(uri)


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
    ],
)
def test_refused_redirect_uris(uri: str, reason: str) -> None:
    with pytest.raises(RegistrationError) as caught:
        check_redirect_uri(uri)
    assert caught.value.error == "invalid_redirect_uri"
    assert reason in caught.value.description


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
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback", "claude://callback"],
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
        "claude://callback",
    ]


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

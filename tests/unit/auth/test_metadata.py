from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata

from mcp_front.auth.rfc8414 import authorization_server_metadata, metadata_paths
from mcp_front.auth.rfc9728 import metadata_url, protected_resource_metadata


def test_authorization_server_metadata_has_what_mcp_clients_need() -> None:
    document = authorization_server_metadata("https://gw.example.com/sso", scopes_supported=["mcp"])
    assert document["issuer"] == "https://gw.example.com/sso"
    assert document["authorization_endpoint"] == "https://gw.example.com/sso/authorize"
    assert document["jwks_uri"] == "https://gw.example.com/sso/.well-known/jwks.json"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["token_endpoint_auth_methods_supported"] == [
        "none",
        "client_secret_post",
        "client_secret_basic",
    ]
    assert document["client_id_metadata_document_supported"] is True
    assert document["authorization_response_iss_parameter_supported"] is True
    parsed = OAuthMetadata.model_validate(document)
    assert str(parsed.token_endpoint) == "https://gw.example.com/sso/token"


def test_metadata_paths_for_issuers_with_and_without_a_path() -> None:
    assert metadata_paths("https://gw.example.com") == (
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    )
    assert metadata_paths("https://gw.example.com/sso/") == (
        "/.well-known/oauth-authorization-server/sso",
        "/.well-known/openid-configuration/sso",
        "/sso/.well-known/openid-configuration",
        "/sso/.well-known/oauth-authorization-server",
    )


def test_protected_resource_metadata_keeps_the_resource_exactly() -> None:
    document = protected_resource_metadata(
        "https://gw.example.com/linear/mcp",
        authorization_server="https://gw.example.com",
        scopes_supported=["mcp"],
    )
    assert document["resource"] == "https://gw.example.com/linear/mcp"
    assert ProtectedResourceMetadata.model_validate(document).bearer_methods_supported == ["header"]
    assert metadata_url("https://gw.example.com/linear/mcp") == (
        "https://gw.example.com/.well-known/oauth-protected-resource/linear/mcp"
    )
    assert metadata_url("https://gw.example.com:8443/base/linear/") == (
        "https://gw.example.com:8443/.well-known/oauth-protected-resource/base/linear"
    )

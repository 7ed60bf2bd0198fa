"""Property-based requests to every OAuth endpoint of a real gateway: never a 500, never a
token or a code for input that is not a valid request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_front import MemoryStore, create_app
from tests.support.gateway import stdio_service
from tests.support.net import free_port, wait_until_healthy
from tests.unit.auth.authorize.conftest import FakeIdP

pytestmark = pytest.mark.e2e

texts = st.text(max_size=40)
values = texts | st.sampled_from(["code", "S256", "plain", "authorization_code", "refresh_token", "none", ""])
params = st.dictionaries(
    st.sampled_from(
        [
            "response_type", "client_id", "redirect_uri", "code_challenge", "code_challenge_method", "state",
            "scope", "resource", "grant_type", "code", "code_verifier", "refresh_token", "client_secret",
            "token", "token_type_hint", "error", "consent", "csrf_token", "decision",
        ]
    ),
    values,
    max_size=8,
)  # fmt: skip
settings_ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {
        "proxy": {
            "baseURL": url,
            "addr": f"127.0.0.1:{port}",
            "auth": {
                "kind": "oauth",
                "issuer": url,
                "idp": {
                    "provider": "oidc",
                    "clientId": "gw",
                    "clientSecret": "gw-secret",
                    "redirectUri": f"{url}/oauth/callback",
                    "discoveryUrl": "http://127.0.0.1:1/.well-known/openid-configuration",
                },
                "allowedDomains": ["example.com"],
                "jwtSecret": "j" * 40,
                "encryptionKey": "k" * 32,
                "storage": "memory",
            },
        },
        "mcpServers": {"probe": stdio_service()},
    }
    app = create_app(config, store=MemoryStore(), identity_provider=FakeIdP())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until_healthy(f"{url}/health")
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def assert_no_grant(response: httpx2.Response) -> None:
    assert response.status_code < 500, response.text
    if response.headers.get("content-type", "").startswith("application/json") and response.content:
        body = response.json()
        if isinstance(body, dict):
            assert "access_token" not in body
            assert "refresh_token" not in body
    location = response.headers.get("location", "")
    assert "code" not in parse_qs(urlsplit(location).query)


@settings_
@given(form=params, endpoint=st.sampled_from(["token", "revoke", "oauth/consent", "authorize"]))
def test_arbitrary_forms_never_fail_or_grant(gateway_url: str, form: dict[str, str], endpoint: str) -> None:
    with httpx2.Client(timeout=30) as http:
        assert_no_grant(http.post(f"{gateway_url}/{endpoint}", data=form))


@settings_
@given(query=params, endpoint=st.sampled_from(["authorize", "oauth/callback"]))
def test_arbitrary_queries_never_fail_or_grant(
    gateway_url: str, query: dict[str, str], endpoint: str
) -> None:
    with httpx2.Client(timeout=30) as http:
        assert_no_grant(http.get(f"{gateway_url}/{endpoint}", params=query))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=4),
    max_leaves=10,
)
registrations = st.fixed_dictionaries(
    {},
    optional={
        "redirect_uris": st.lists(
            texts | st.sampled_from(["https://a.example/cb", "javascript:x", "claude://cb"])
        ),
        "token_endpoint_auth_method": values,
        "grant_types": st.lists(values),
        "response_types": st.lists(values),
        "client_name": texts,
        "scope": texts,
        "application_type": values,
    },
)


@settings_
@given(body=registrations | json_values)
def test_arbitrary_registrations_never_fail(gateway_url: str, body: object) -> None:
    with httpx2.Client(timeout=30) as http:
        response = http.post(f"{gateway_url}/register", json=body)
    assert response.status_code in {201, 400, 429}, response.text
    if response.status_code == 400:
        assert response.json()["error"] in {"invalid_client_metadata", "invalid_redirect_uri"}

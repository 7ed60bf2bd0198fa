"""Property: arbitrary requests to `/token` and `/revoke` never cause a 500, never yield a token."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_front.auth.refresh import RefreshGrant

from .conftest import LINEAR, REDIRECT, VERIFIER, make_env

NAMES = [
    "grant_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "client_id",
    "client_secret",
    "refresh_token",
    "resource",
    "scope",
    "token",
    "token_type_hint",
]
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "authorization_code",
            "refresh_token",
            "public",
            "confidential",
            "access_token",
            REDIRECT,
            VERIFIER,
            LINEAR,
            "http://[::1",
            "https://gw.example.com/linear?x",
            "%FF",
            "a\x00b",
        ]
    ),
)
FORMS = st.lists(st.tuples(st.one_of(st.sampled_from(NAMES), st.text(max_size=10)), VALUES), max_size=8)
AUTHORIZATION = st.one_of(
    st.none(),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30).map(lambda t: "Basic " + t),
    st.binary(max_size=30).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    st.sampled_from(["Basic " + base64.b64encode(b"confidential:x").decode(), "Bearer abc", "Basic"]),
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "application/json",
        "text/plain",
        "",
    ]
)


def encode(form: list[tuple[str, str]]) -> bytes:
    return urlencode(form).encode()


BODIES = st.one_of(FORMS.map(encode), st.binary(max_size=200))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/token", "/revoke"]),
    body=BODIES,
    content_type=CONTENT_TYPES,
    authorization=AUTHORIZATION,
)
async def test_arbitrary_requests_never_fail_or_leak(
    path: str, body: bytes, content_type: str, authorization: str | None
) -> None:
    env = make_env()
    await env.code()  # a live code and family exist, but the input cannot know them
    await env.refresh.issue_family(RefreshGrant("user-1", "public", LINEAR, ("mcp",), None))
    headers = {b"Content-Type": content_type.encode()}
    if authorization is not None:
        headers[b"Authorization"] = authorization.encode("latin-1")
    async with env.http:
        response = await env.http.post(path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    assert response.headers["cache-control"] == "no-store"
    assert "access_token" not in response.text
    assert "refresh_token" not in response.text or response.status_code >= 400
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "error_description"}

"""Property-based requests against a real gateway: whatever arrives, no 500 and no crash."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_front import create_app
from tests.support.gateway import bearer, stdio_service
from tests.support.net import free_port, wait_until_healthy

pytestmark = pytest.mark.e2e

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
        "id": st.integers() | st.text(max_size=8) | st.none() | st.booleans(),
        "method": st.sampled_from(["initialize", "tools/list", "tools/call", "ping", "server/discover", ""])
        | st.text(max_size=12),
        "params": json_values,
        "result": json_values,
        "error": json_values,
    },
)
bodies = (
    messages.map(lambda m: json.dumps(m).encode())
    | st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
)
header_values = st.sampled_from(
    [
        None,
        "application/json",
        "text/event-stream",
        "application/json, text/event-stream",
        "*/*",
        "text/plain",
        "",
    ]
)


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    port = free_port()
    app = create_app(
        {
            "proxy": {"baseURL": f"http://127.0.0.1:{port}", "addr": f"127.0.0.1:{port}"},
            "mcpServers": {"probe": stdio_service(serviceAuths=[bearer("t0k3n")])},
        }
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until_healthy(f"http://127.0.0.1:{port}/health")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive()


def assert_well_formed_error(response: httpx2.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and response.status_code != 401:
        payload: Any = response.json()
        assert payload["jsonrpc"] == "2.0"
        assert isinstance(payload["error"]["code"], int)
        assert isinstance(payload["error"]["message"], str)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=bodies,
    content_type=header_values,
    accept=header_values,
    session=st.none() | st.text(alphabet="abcdefXYZ0123456789-_", max_size=32),
    version=st.sampled_from([None, "2025-06-18", "2025-11-25", "2026-07-28", "garbage"]),
    endpoint=st.sampled_from(["mcp", "message?sessionId=nope", "message"]),
)
def test_arbitrary_posts_never_produce_a_server_error(
    gateway_url: str,
    body: bytes,
    content_type: str | None,
    accept: str | None,
    session: str | None,
    version: str | None,
    endpoint: str,
) -> None:
    headers = {"Authorization": "Bearer t0k3n"}
    for name, value in (
        ("Content-Type", content_type),
        ("Accept", accept),
        ("Mcp-Session-Id", session),
        ("MCP-Protocol-Version", version),
    ):
        if value is not None:
            headers[name] = value
    with httpx2.Client(timeout=30) as http:
        response = http.post(f"{gateway_url}/probe/{endpoint}", content=body, headers=headers)
        assert_well_formed_error(response)
        if response.headers.get("mcp-session-id"):
            http.delete(
                f"{gateway_url}/probe/mcp",
                headers={**headers, "Mcp-Session-Id": response.headers["mcp-session-id"]},
            )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
    session=st.none() | st.text(alphabet="abcXYZ019-_", max_size=8),
)
def test_other_methods_get_clear_statuses(gateway_url: str, method: str, session: str | None) -> None:
    headers = {"Authorization": "Bearer t0k3n", "Accept": "application/json"}
    if session:
        headers["Mcp-Session-Id"] = session
    with httpx2.Client(timeout=30) as http:
        response = http.request(method, f"{gateway_url}/probe/mcp", headers=headers)
    assert response.status_code in {400, 404, 405, 406}, (method, response.status_code)
    if method != "HEAD":
        assert_well_formed_error(response)

"""What an unauthenticated caller cannot make the gateway do, black box: a gateway process
with small limits, flooded (boundedly, on loopback) with plain HTTP and raw sockets."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from tests.servers.conformance import ServerProcess
from tests.support.gateway import SERVERS
from tests.support.net import free_port
from tests.support.oidc import OIDCServer, gateway_auth_config, oidc_provider_process
from tests.support.process import gateway_process_on

pytestmark = pytest.mark.e2e

PROBE = {"transportType": "stdio", "command": sys.executable, "args": [str(SERVERS / "probe_server.py")]}
SMALL_LIMITS = {
    "authorize": {"requests": 3, "per": "1m"},
    "token": {"requests": 3, "per": "1m"},
    "register": {"requests": 3, "per": "1m"},
    "revoke": {"requests": 3, "per": "1m"},
    "failedAuthentication": {"requests": 3, "per": "1m"},
}


@pytest.fixture(scope="module")
def oidc() -> Iterator[OIDCServer]:
    with oidc_provider_process() as server:
        yield server


def start(
    tmp_path_factory: pytest.TempPathFactory, oidc: OIDCServer, **proxy: Any
) -> contextlib.AbstractContextManager[ServerProcess]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    services = {
        "probe": {
            **PROBE,
            "serviceAuths": [
                {"type": "basic", "username": "ci", "password": "correct horse"},
                {"type": "bearer", "tokens": ["ci.token.42"]},
            ],
        },
    }
    auth = gateway_auth_config(url, oidc)
    return gateway_process_on(port, tmp_path_factory.mktemp("limits"), services, auth=auth, **proxy)


@pytest.fixture
def gateway(tmp_path_factory: pytest.TempPathFactory, oidc: OIDCServer) -> Iterator[ServerProcess]:
    with start(tmp_path_factory, oidc, rateLimits=SMALL_LIMITS, requestReadTimeout="2s") as process:
        yield process


def assert_limited(response: httpx2.Response, *, page: bool = False) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    if page:
        assert response.headers["content-type"].startswith("text/html")
    else:
        assert response.json()["error"] == "temporarily_unavailable"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "page"),
    [
        ("GET", "/authorize", {"params": {"client_id": "nobody"}}, True),
        ("POST", "/token", {"data": {"grant_type": "refresh_token", "client_id": "x"}}, False),
        ("POST", "/register", {"json": {"redirect_uris": ["javascript:x"]}}, False),
        ("POST", "/revoke", {"data": {"token": "x", "client_id": "x"}}, False),
    ],
)
async def test_each_oauth_endpoint_is_limited_per_address(
    gateway: ServerProcess, method: str, path: str, kwargs: dict[str, Any], page: bool
) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        for _ in range(3):
            response = await http.request(method, gateway.url + path, **kwargs)
            assert response.status_code != 429
        assert_limited(await http.request(method, gateway.url + path, **kwargs), page=page)
        # Other endpoints are counted on their own.
        assert (await http.get(gateway.url + "/.well-known/oauth-authorization-server")).status_code == 200


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_wrong_static_credentials_are_limited_but_access_tokens_still_checked(
    gateway: ServerProcess,
) -> None:
    url = f"{gateway.url}/probe/mcp"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx2.AsyncClient(timeout=30) as http:
        # A right credential counts once, until it is known to be right; then never again.
        for _ in range(3):
            ok = await http.post(url, json=body, headers=basic("ci", "correct horse"))
            assert ok.status_code != 401
        for _ in range(2):
            assert (await http.post(url, json=body, headers=basic("ci", "guess"))).status_code == 401
        limited = await http.post(url, json=body, headers=basic("ci", "guess"))
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        # No static credential is even checked now, whatever its shape: a guesser learns nothing.
        assert (await http.post(url, json=body, headers=basic("ci", "correct horse"))).status_code == 429
        dotted = await http.post(url, json=body, headers={"Authorization": "Bearer ci.token.42"})
        assert dotted.status_code == 429
        # One of the gateway's access tokens cannot be guessed: it is still checked, and a bad
        # one (expired, say) is a 401 to refresh on.
        kid = (await http.get(f"{gateway.url}/.well-known/jwks.json")).json()["keys"][0]["kid"]
        header = {"typ": "at+jwt", "alg": "ES256", "kid": kid}
        encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
        token = await http.post(url, json=body, headers={"Authorization": f"Bearer {encoded}.e30.c2ln"})
        assert token.status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/authorize", {"data": {"client_id": "x", "pad": "p" * 20_000}}),
        ("GET", "/authorize", {"params": {"client_id": "x", "pad": "p" * 20_000}}),
        ("POST", "/oauth/consent", {"data": {"consent": "x", "pad": "p" * 20_000}}),
        ("POST", "/token", {"data": {"grant_type": "x", "pad": "p" * 20_000}}),
    ],
)
async def test_forms_are_read_within_a_small_bound(
    gateway: ServerProcess, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.request(method, gateway.url + path, **kwargs)
    assert response.status_code == 413


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if sock.recv(4096) == b"":
                return True
    except (TimeoutError, ConnectionResetError):
        return False
    return False


@pytest.mark.parametrize("sent", [b"", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "])
def test_a_connection_that_never_completes_a_request_is_dropped(gateway: ServerProcess, sent: bytes) -> None:
    with socket.create_connection((gateway.host, gateway.port)) as sock:
        sock.sendall(sent)
        assert closed_by_server(sock, within=15.0)
    # A request sent in time is served.
    with socket.create_connection((gateway.host, gateway.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


async def test_an_sse_session_holds_a_bounded_number_of_unanswered_requests(gateway: ServerProcess) -> None:
    headers = basic("ci", "correct horse")
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        http.stream("GET", f"{gateway.url}/probe/sse", headers=headers) as stream,
    ):
        lines = stream.aiter_lines()
        endpoint = ""
        async for line in lines:
            if line.startswith("data: "):
                endpoint = line.removeprefix("data: ")
                break
        post = f"{gateway.url}{endpoint}"
        initialize = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        assert (await http.post(post, json=initialize, headers=headers)).status_code == 202
        # The client stops reading its stream; its slow requests pile up to the bound, no further.
        statuses = []
        for n in range(1, 70):
            call = {
                "jsonrpc": "2.0",
                "id": n,
                "method": "tools/call",
                "params": {"name": "sleep", "arguments": {"seconds": 30}},
            }
            statuses.append((await http.post(post, json=call, headers=headers)).status_code)
        assert statuses.count(202) <= 64
        assert statuses[-1] == 429


@pytest.mark.parametrize(("trusted", "shared"), [(None, True), (["127.0.0.1"], False)])
async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    tmp_path_factory: pytest.TempPathFactory, oidc: OIDCServer, trusted: list[str] | None, shared: bool
) -> None:
    proxy: dict[str, Any] = {"rateLimits": {"register": {"requests": 2, "per": "1m"}}}
    if trusted is not None:
        proxy["trustedProxies"] = trusted
    with start(tmp_path_factory, oidc, **proxy) as process:
        async with httpx2.AsyncClient(timeout=30) as http:
            statuses = []
            for n in range(6):
                response = await http.post(
                    f"{process.url}/register",
                    json={"redirect_uris": ["javascript:x"]},
                    headers={"X-Forwarded-For": f"203.0.113.{n}"},
                )
                statuses.append(response.status_code)
    if shared:
        # Without trusted proxies, every request is the loopback peer's, whatever it claims.
        assert statuses.count(429) == 4
    else:
        assert 429 not in statuses


def test_headers_without_end_get_431_and_the_connection_closes(gateway: ServerProcess) -> None:
    with socket.create_connection((gateway.host, gateway.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        line = b"X-Padding: " + b"p" * 1000 + b"\r\n"
        answer = b""
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            for _ in range(200):
                sock.sendall(line * 10)
        with contextlib.suppress(OSError):
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 431")
    with socket.create_connection((gateway.host, gateway.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: b\r\n" * 50 + b"\r\n")
        sock.settimeout(10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_one_address_holds_a_bounded_number_of_connections_without_a_request(gateway: ServerProcess) -> None:
    idle = [socket.create_connection((gateway.host, gateway.port)) for _ in range(80)]
    try:
        time.sleep(1.0)
        closed = sum(closed_by_server(sock, within=0.2) for sock in idle)
        assert closed >= 80 - 64
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.5)
    with socket.create_connection((gateway.host, gateway.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


ODD_CLIENT = "https://a\uff0f\u202eFORGED/x"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/authorize", {"params": {"client_id": ODD_CLIENT}}, 400),
        ("GET", "/authorize", {"params": {"client_id": "https://[::1/x"}}, 400),
        ("POST", "/token", {"data": {"client_id": ODD_CLIENT, "grant_type": "authorization_code"}}, 401),
        (
            "POST",
            "/register",
            {"json": {"redirect_uris": ["http://127.0.0.1/cb"], "application_type": []}},
            400,
        ),
        (
            "POST",
            "/register",
            {"json": {"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": ["none"]}},
            400,
        ),
        ("GET", "/authorize/", {"headers": {"Host": "evil.example"}}, 404),
    ],
)
async def test_odd_input_gets_a_clear_refusal_never_a_500(
    gateway: ServerProcess, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.request(method, gateway.url + path, **kwargs)
    assert response.status_code == status, response.text
    assert "location" not in response.headers
    assert "Traceback" not in gateway.log()


def test_an_aborted_registration_body_is_no_500(gateway: ServerProcess) -> None:
    with socket.create_connection((gateway.host, gateway.port)) as sock:
        sock.sendall(
            b"POST /register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"re'
        )
    time.sleep(1.0)
    assert "Traceback" not in gateway.log()

"""The example as its README runs it: `python app.py` serving on a loopback port, a person
signing in with the host's own account through the SDK's OAuth client, the host's route and
the mounted gateway side by side, and every stdio process gone once uvicorn stops."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import anyio
import httpx2
import psutil
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.oauth2 import AuthorizationCodeResult
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.browser import follow, form_of, submit

pytestmark = pytest.mark.anyio

APP_DIR = Path(__file__).resolve().parent.parent
CLIENT_REDIRECT = "http://127.0.0.1:3999/callback"
ADA = ("ada@example.com", "ada's long password")
OUTSIDER = ("grace@partner.example", "grace's long password")  # not in allowedDomains
STARTUP_SECONDS = 60.0
EXIT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Host:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    users = tmp_path / "users.json"
    for email, password in (ADA, OUTSIDER):
        subprocess.run(
            [sys.executable, "users.py", "add", email, "--file", str(users), "--password-stdin"],
            cwd=APP_DIR,
            input=f"{password}\n".encode(),
            check=True,
            timeout=120,
        )
    # The example's own configuration, served on this port, its database in the test's folder.
    config = json.loads((APP_DIR / "config.json").read_text())
    config["proxy"]["baseURL"] = config["proxy"]["auth"]["issuer"] = url
    config["proxy"]["auth"]["storage"]["path"] = str(tmp_path / "gateway.sqlite3")
    (tmp_path / "config.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "MCP_FRONT_CONFIG": str(tmp_path / "config.json"),
        "USERS_FILE": str(users),
        "ENCRYPTION_KEY": secrets.token_hex(16),
        # The demo server runs with `python3`: this interpreter.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=APP_DIR,
            env={**env, "PORT": str(port)},
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert process.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, "uvicorn did not start listening"
                    time.sleep(0.1)
            yield Host(url, process, log_path)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()


class Person:
    """Signs in at the host's login page and approves the gateway's consent page."""

    def __init__(self, email: str, password: str) -> None:
        self.email, self.password = email, password
        self.result: dict[str, str] = {}

    async def visit(self, authorization_url: str) -> None:
        async with httpx2.AsyncClient(timeout=60) as browser:
            login = await follow(browser, await browser.get(authorization_url), stop_at=CLIENT_REDIRECT)
            assert urlsplit(str(login.url)).path == "/login", login.text[:400]
            signed_in = await submit(
                browser, login, email=self.email, password=self.password, action="sign-in"
            )
            consent = await follow(browser, signed_in, stop_at=CLIENT_REDIRECT)
            assert consent.status_code == 200, consent.text[:400]
            assert self.email in consent.text
            approved = await submit(browser, consent, decision="approve")
            location = urljoin(str(approved.url), approved.headers["location"])
            assert location.startswith(CLIENT_REDIRECT), location
            self.result = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}

    async def callback(self) -> AuthorizationCodeResult:
        return AuthorizationCodeResult(
            code=self.result["code"], state=self.result["state"], iss=self.result["iss"]
        )


class MemoryTokens:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


CLIENT_METADATA = {
    "client_name": "example test client",
    "redirect_uris": [CLIENT_REDIRECT],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


async def test_a_person_signs_in_with_the_hosts_account_and_everything_stops_together(host: Host) -> None:
    async with httpx2.AsyncClient(base_url=host.url, timeout=60) as http:
        assert (await http.get("/hello")).json() == {"app": "host", "gateway": "/"}
        refused = await http.post("/demo/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert refused.status_code == 401
        assert "resource_metadata" in refused.headers["www-authenticate"]

    ada = Person(*ADA)
    auth = OAuthClientProvider(
        server_url=f"{host.url}/demo/mcp",
        client_metadata=OAuthClientMetadata.model_validate(CLIENT_METADATA),
        storage=MemoryTokens(),
        redirect_handler=ada.visit,
        callback_handler=ada.callback,
    )
    async with (
        httpx2.AsyncClient(auth=auth, timeout=60) as http,
        Client(streamable_http_client(f"{host.url}/demo/mcp", http_client=http)) as client,
    ):
        result = await client.call_tool("whoami", {})
        assert result.content[0].text == "ada@example.com"  # type: ignore[union-attr]
        children = psutil.Process(host.process.pid).children(recursive=True)
        assert children, "the user's demo server runs as a child of the host"

    host.process.send_signal(signal.SIGTERM)
    with anyio.fail_after(EXIT_SECONDS):
        while host.process.poll() is None:
            await anyio.sleep(0.1)
    # uvicorn shuts down gracefully, then ends by the signal it was sent.
    assert host.process.returncode in (0, -signal.SIGTERM)
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]


async def test_the_gateway_still_decides_who_may_in(host: Host) -> None:
    """The host vouches for its users; the gateway's `allowedDomains` still applies to them."""
    async with httpx2.AsyncClient(base_url=host.url, timeout=60) as browser:
        registered = await browser.post("/register", json=CLIENT_METADATA)
        assert registered.status_code == 201, registered.text
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        authorize = "/authorize?" + urlencode(
            {
                "response_type": "code",
                "client_id": registered.json()["client_id"],
                "redirect_uri": CLIENT_REDIRECT,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": "client-state",
                "resource": f"{host.url}/demo",
            }
        )
        login = await follow(browser, await browser.get(authorize), stop_at=CLIENT_REDIRECT)
        assert "password" in form_of(login.text).fields
        email, password = OUTSIDER
        signed_in = await submit(browser, login, email=email, password=password, action="sign-in")
        refusal = await follow(browser, signed_in, stop_at=CLIENT_REDIRECT)
        assert refusal.status_code == 403
        assert "Signing in did not complete" in refusal.text
        assert "code=" not in refusal.text


def test_the_accounts_file_is_hidden_from_every_stdio_server(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    users.write_text('{"users": []}')
    shown = subprocess.run(
        [sys.executable, "-c", "import app; print(app.config.mcp_servers['demo'].sandbox.hidden_paths)"],
        cwd=APP_DIR,
        env={**os.environ, "USERS_FILE": str(users), "ENCRYPTION_KEY": "k" * 32},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert str(users.resolve()) in shown.stdout

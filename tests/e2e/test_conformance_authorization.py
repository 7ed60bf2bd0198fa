"""The official conformance suite's authorization-server scenarios against the gateway.

`conformance authorization --url ISSUER` (npm `@modelcontextprotocol/conformance@0.2.0-alpha.12`)
reads the gateway's RFC 8414 metadata, then runs an authorization code grant with PKCE for a
client registered beforehand. The gateway runs as a real process with a real OpenID Provider
upstream; this test plays the browser: it follows the sign-in, approves the consent page and
delivers the final redirect to the suite's callback listener.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from tests.servers.conformance import NodeToolsMissingError, ServerProcess, SuiteResult
from tests.support.authorization_suite import (
    callback_url,
    require_authorization_suite,
    run_authorization_suite,
    sign_in,
)
from tests.support.gateway import SERVERS
from tests.support.net import free_port
from tests.support.oidc import TEST_USER, gateway_auth_config, oidc_provider_process
from tests.support.process import gateway_process_on

pytestmark = pytest.mark.e2e

# Each scenario and the check that carries its verdict.
SCENARIOS = {
    "authorization-server-metadata-endpoint": "authorization-server-metadata",
    "authorization-code-grant": "authorization-code-grant",
}


@dataclass
class Gateway:
    url: str
    process: ServerProcess
    idp_client_secret: str


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    try:
        require_authorization_suite()
    except NodeToolsMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    callback = f"{url}/oauth/callback"
    probe = {"transportType": "stdio", "command": sys.executable, "args": [str(SERVERS / "probe_server.py")]}
    with oidc_provider_process(redirect_uris=[callback]) as oidc:
        auth = gateway_auth_config(url, oidc)
        directory = tmp_path_factory.mktemp("conformance-authorization")
        with gateway_process_on(port, directory, {"probe": probe}, auth=auth) as process:
            yield Gateway(url, process, oidc.basic_client[1])


def register_public_client(gateway: Gateway, redirect_uri: str) -> str:
    """Register a public client (PKCE only) for the suite, as its operator would beforehand."""
    response = httpx2.post(
        f"{gateway.url}/register",
        json={
            "client_name": "conformance authorization suite",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
        timeout=10.0,
    )
    assert response.status_code == 201, response.text
    client_id: str = response.json()["client_id"]
    return client_id


@pytest.fixture(scope="module")
def suite(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> SuiteResult:
    port = free_port()
    redirect_uri = callback_url(port)
    client_id = register_public_client(gateway, redirect_uri)
    visited: list[str] = []

    def browse(authorization_url: str) -> None:
        visited.append(authorization_url)
        sign_in(authorization_url, redirect_uri, approve_as=TEST_USER["email"])

    result = run_authorization_suite(
        gateway.url,
        client_id=client_id,
        port=port,
        resource=f"{gateway.url}/probe/mcp",
        browse=browse,
        output_dir=tmp_path_factory.mktemp("conformance-authorization-results"),
    )
    assert len(visited) == 1, f"the suite asked for {len(visited)} sign-ins:\n{result.output}"
    return result


def test_every_authorization_scenario_passes(suite: SuiteResult, gateway: Gateway) -> None:
    failures = f"{suite.describe_failures()}\n\n{suite.output}\n\nGateway log:\n{gateway.process.log()}"
    assert set(suite.scenarios) == set(SCENARIOS), suite.output
    assert suite.total_failed == 0, failures
    assert suite.exit_code == 0, failures


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_made_its_checks(suite: SuiteResult, scenario: str) -> None:
    # A scenario that skips (no client id, no supported client authentication) counts
    # neither passed nor failed; each of these must have run and succeeded.
    result = suite.scenarios[scenario]
    assert result.passed >= 1, suite.output
    assert result.failed == 0, suite.describe_failures()
    statuses = {check.id: check.status for check in result.checks}
    assert statuses.get(SCENARIOS[scenario]) == "SUCCESS", statuses


def test_the_metadata_advertises_client_id_metadata_documents(suite: SuiteResult) -> None:
    checks = {check.id: check for check in suite.scenarios["authorization-server-metadata-endpoint"].checks}
    assert checks["authorization-server-metadata-cimd"].status == "SUCCESS", checks


def test_the_log_has_no_secret(suite: SuiteResult, gateway: Gateway) -> None:
    log = Path(gateway.process.log_path).read_text()
    for secret in ("k" * 32, gateway.idp_client_secret):
        assert secret not in log

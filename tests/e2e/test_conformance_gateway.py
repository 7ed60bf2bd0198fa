"""The official conformance suite through the gateway, compared with the same backend directly.

The backend is the conformance test server, run by the gateway as a stdio child; the
baseline runs it over streamable HTTP with no gateway in between. Every scenario must
score through the gateway exactly what it scores directly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.servers.conformance import (
    CONFORMANCE_SERVER,
    NodeToolsMissingError,
    conformance_server,
    regressions,
    require_node_tools,
    run_server_suite,
)
from tests.support.process import gateway_process

pytestmark = pytest.mark.e2e


def test_conformance_through_the_gateway_matches_the_backend_directly(tmp_path: Path) -> None:
    try:
        require_node_tools()
    except NodeToolsMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    with conformance_server(log_path=tmp_path / "direct.log") as direct:
        baseline = run_server_suite(direct.url, suite="all", output_dir=tmp_path / "direct")
    service = {
        "transportType": "stdio",
        "command": sys.executable,
        "args": [str(CONFORMANCE_SERVER), "stdio"],
    }
    with gateway_process(tmp_path, {"conformance": service}) as gateway:
        through = run_server_suite(
            f"{gateway.url}/conformance/mcp", suite="all", output_dir=tmp_path / "gateway"
        )
        log = gateway.log()
    assert baseline.total_failed == 0, baseline.describe_failures()
    assert regressions(baseline, through) == [], f"{through.describe_failures()}\n\nGateway log:\n{log}"
    scores = {name: (s.passed, s.failed) for name, s in through.scenarios.items()}
    assert scores == {name: (s.passed, s.failed) for name, s in baseline.scenarios.items()}
    assert through.exit_code == 0

"""The official MCP conformance suite against the conformance test server, with no gateway in between.

This run is the baseline for the gateway's own conformance runs: every scenario that
passes here must pass through the gateway too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.conformance import (
    NodeToolsMissingError,
    ServerProcess,
    SuiteResult,
    conformance_server,
    list_server_scenarios,
    require_node_tools,
    run_server_suite,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    try:
        require_node_tools()
    except NodeToolsMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    log_path = tmp_path_factory.mktemp("conformance-server") / "server.log"
    with conformance_server(log_path=log_path) as running:
        yield running


@pytest.fixture(scope="module")
def results(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> SuiteResult:
    return run_server_suite(
        server.url, suite="all", output_dir=tmp_path_factory.mktemp("conformance-results")
    )


def test_every_scenario_passes(results: SuiteResult, server: ServerProcess) -> None:
    assert results.total_failed == 0, f"{results.describe_failures()}\n\nServer log:\n{server.log()}"
    assert results.failed_scenarios == []
    assert results.exit_code == 0, results.output


def test_every_scenario_of_the_suite_ran(results: SuiteResult) -> None:
    assert sorted(results.scenarios) == sorted(list_server_scenarios())


def test_summary_agrees_with_the_scenarios(results: SuiteResult) -> None:
    assert results.total_passed == sum(scenario.passed for scenario in results.scenarios.values())
    assert results.total_passed > 0
    for scenario in results.scenarios.values():
        recorded = sum(check.status == "SUCCESS" for check in scenario.checks)
        assert recorded == scenario.passed, scenario.name


@pytest.mark.parametrize(
    "scenario",
    [
        "tools-call-sampling",
        "tools-call-elicitation",
        "elicitation-sep1034-defaults",
        "elicitation-sep1330-enums",
    ],
)
def test_server_to_client_requests_complete(results: SuiteResult, scenario: str) -> None:
    assert results.scenarios[scenario].ok
    assert results.scenarios[scenario].passed >= 1


def test_dns_rebinding_is_rejected(results: SuiteResult) -> None:
    checks = {check.id: check.status for check in results.scenarios["dns-rebinding-protection"].checks}
    assert checks == {
        "localhost-host-rebinding-rejected": "SUCCESS",
        "localhost-host-valid-accepted": "SUCCESS",
    }

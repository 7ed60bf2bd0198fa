"""The official conformance suite through the gateway in front of HTTP backends.

The backend is the conformance test server run as its own process, once over streamable
HTTP (``conformance_server.py http``, service ``"transportType": "streamable-http"``) and
once over legacy HTTP+SSE (``conformance_server.py sse``, service ``"transportType": "sse"``).
The suite speaks streamable HTTP only, so it always reaches the gateway at
``/<service>/mcp``; the baseline is the same server reached directly over streamable HTTP.

A streamable-HTTP backend must score through the gateway exactly what it scores directly.

An SSE backend must too, with no expected differences: the scenarios that exercise the
streamable-HTTP stream itself (``server-sse-polling``, ``server-sse-multiple-streams``,
``tools-call-with-logging`` and ``tools-call-with-progress`` on the POST response stream)
are about the transport between the suite and the gateway, which is streamable HTTP in
both runs. The one capability an SSE backend lacks, closing a request's stream so the
client resumes it with ``Last-Event-ID`` (``test_reconnection``), only changes
``server-sse-polling``'s informational checks (the suite records them as INFO, never as a
pass or a failure), so `EXPECTED_SSE_DIFFERENCES` is empty; a scenario that the bridge
cannot carry would show up as a regression here.

Because ``server-sse-polling`` only reports whether the answer to ``test_reconnection``
arrived, and never fails on it, the last tests make that call with the SDK client: the
streamable-HTTP backend closes the call's event stream before it answers (SEP-1699), and
the answer must still reach the client through the gateway, as it does directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import types

from tests.servers.conformance import (
    Check,
    NodeToolsMissingError,
    ServerProcess,
    SuiteResult,
    conformance_server,
    conformance_sse_server,
    list_server_scenarios,
    regressions,
    require_node_tools,
    run_server_suite,
)
from tests.support.clients import Transport, connect, mcp_error_in, text_of
from tests.support.process import gateway_process

pytestmark = pytest.mark.e2e

EXPECTED_SSE_DIFFERENCES: frozenset[str] = frozenset()
"""Scenarios that pass directly but cannot pass through an SSE backend (see the module docstring)."""


def _scores(result: SuiteResult) -> dict[str, tuple[int, int]]:
    return {name: (scenario.passed, scenario.failed) for name, scenario in result.scenarios.items()}


def _verdicts(result: SuiteResult) -> dict[str, list[tuple[str, str]]]:
    """Each scenario's non-informational checks: successes, warnings and failures."""

    def verdicts(checks: tuple[Check, ...]) -> list[tuple[str, str]]:
        return sorted((check.id, check.status) for check in checks if check.status != "INFO")

    return {name: verdicts(scenario.checks) for name, scenario in result.scenarios.items()}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformance-http-backends")


@pytest.fixture(scope="module")
def backends(logs: Path) -> Iterator[dict[str, ServerProcess]]:
    try:
        require_node_tools()
    except NodeToolsMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    with (
        conformance_server(log_path=logs / "streamable-http.log") as streamable,
        conformance_sse_server(log_path=logs / "sse.log") as sse,
    ):
        yield {"streamable-http": streamable, "sse": sse}


@pytest.fixture(scope="module")
def baseline(backends: dict[str, ServerProcess], logs: Path) -> SuiteResult:
    """The suite against the streamable-HTTP backend with no gateway in between."""
    result = run_server_suite(backends["streamable-http"].url, suite="all", output_dir=logs / "direct")
    assert result.total_failed == 0, f"{result.describe_failures()}\n\n{backends['streamable-http'].log()}"
    assert sorted(result.scenarios) == sorted(list_server_scenarios())
    return result


@pytest.fixture(scope="module")
def gateway(backends: dict[str, ServerProcess], logs: Path) -> Iterator[ServerProcess]:
    services = {
        f"conformance-{kind}": {"transportType": kind, "url": backend.url}
        for kind, backend in backends.items()
    }
    directory = logs / "gateway"
    directory.mkdir()
    with gateway_process(directory, services) as running:
        yield running


def _through_gateway(gateway: ServerProcess, kind: str, logs: Path) -> SuiteResult:
    return run_server_suite(
        f"{gateway.url}/conformance-{kind}/mcp", suite="all", output_dir=logs / f"gateway-{kind}"
    )


def test_streamable_http_backend_scores_through_the_gateway_what_it_scores_directly(
    backends: dict[str, ServerProcess], baseline: SuiteResult, gateway: ServerProcess, logs: Path
) -> None:
    through = _through_gateway(gateway, "streamable-http", logs)
    context = (
        f"{through.describe_failures()}\n\nGateway log:\n{gateway.log()}\n\n"
        f"Backend log:\n{backends['streamable-http'].log()}"
    )
    assert regressions(baseline, through) == [], context
    assert _scores(through) == _scores(baseline), context
    assert _verdicts(through) == _verdicts(baseline), context
    assert through.total_passed == baseline.total_passed
    assert through.exit_code == 0, context


def test_sse_backend_scores_through_the_gateway_what_the_server_scores_directly(
    backends: dict[str, ServerProcess], baseline: SuiteResult, gateway: ServerProcess, logs: Path
) -> None:
    through = _through_gateway(gateway, "sse", logs)
    context = (
        f"{through.describe_failures()}\n\nGateway log:\n{gateway.log()}\n\n"
        f"Backend log:\n{backends['sse'].log()}"
    )
    assert set(regressions(baseline, through)) == EXPECTED_SSE_DIFFERENCES, context
    assert sorted(through.scenarios) == sorted(baseline.scenarios)
    expected = {
        name: score for name, score in _scores(baseline).items() if name not in EXPECTED_SSE_DIFFERENCES
    }
    actual = {name: score for name, score in _scores(through).items() if name not in EXPECTED_SSE_DIFFERENCES}
    assert actual == expected, context
    assert sorted(through.failed_scenarios) == sorted(EXPECTED_SSE_DIFFERENCES), context
    verdicts = {k: v for k, v in _verdicts(through).items() if k not in EXPECTED_SSE_DIFFERENCES}
    assert verdicts == {k: v for k, v in _verdicts(baseline).items() if k not in EXPECTED_SSE_DIFFERENCES}


async def _reconnection_call(url: str, transport: Transport) -> tuple[bool, str, list[object]]:
    """Call ``test_reconnection``: whether it failed, its text, and the log messages that came with it."""
    logged: list[object] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(params.data)

    try:
        with anyio.fail_after(30):
            async with connect(url, transport=transport, logging_callback=on_log) as client:
                result = await client.call_tool("test_reconnection", {})
    except Exception as exc:  # an error answer, raised through the client's task groups
        error = mcp_error_in(exc)
        if error is None:
            raise
        return True, f"JSON-RPC error {error.code}: {error.message}", logged
    return bool(result.is_error), text_of(result), logged


@pytest.mark.parametrize("kind", ["streamable-http", "sse"])
async def test_a_call_whose_stream_the_backend_closes_is_answered_through_the_gateway(
    backends: dict[str, ServerProcess], gateway: ServerProcess, kind: Transport
) -> None:
    """SEP-1699: a backend may close a request's event stream and send the answer on the
    stream the client resumes with ``Last-Event-ID``; the gateway must deliver that answer."""
    expected = (False, "Reconnection test completed", ["Before disconnect", "After reconnect"])
    assert await _reconnection_call(backends[kind].url, kind) == expected
    through = await _reconnection_call(f"{gateway.url}/conformance-{kind}/mcp", "streamable-http")
    log_tail = "\n".join(gateway.log().splitlines()[-20:])
    assert through == expected, f"through the gateway: {through}\n\nGateway log (end):\n{log_tail}"

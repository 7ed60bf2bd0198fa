"""`mcp-front serve` over HTTPS, with its own certificate: an MCP client that trusts the
certificate's authority talks to it; bad TLS files stop it at start, named."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_front.cli import EXIT_INVALID, EXIT_USAGE, main
from tests.support.gateway import bearer, stdio_service
from tests.support.net import free_port
from tests.support.process import gateway_process_on, write_config
from tests.support.tls import make_tls

pytestmark = pytest.mark.e2e

TOKEN = "tls-test-token"


async def test_an_mcp_client_reaches_a_gateway_serving_https(tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    port = free_port()
    services = {"probe": stdio_service(serviceAuths=[bearer(TOKEN)])}
    flags = ("--tls-cert", str(tls.cert_file), "--tls-key", str(tls.key_file))
    with gateway_process_on(port, tmp_path, services, extra_args=flags, baseURL=f"https://127.0.0.1:{port}"):
        url = f"https://127.0.0.1:{port}/probe/mcp"
        async with (
            httpx2.AsyncClient(
                verify=tls.client_context(), headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            ) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            tools = await client.list_tools()
            assert "echo" in {tool.name for tool in tools.tools}
        async with httpx2.AsyncClient(timeout=10) as plain:
            with pytest.raises(httpx2.HTTPError):
                await plain.get(f"http://127.0.0.1:{port}/health")


def test_tls_files_that_cannot_serve_stop_the_gateway_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = make_tls(tmp_path / "a"), make_tls(tmp_path / "b")
    config = write_config(tmp_path, {"probe": stdio_service()}, free_port())

    assert main(["serve", "--config", str(config), "--tls-cert", str(first.cert_file)]) == EXIT_USAGE
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err

    missing = str(tmp_path / "nowhere.pem")
    unreadable = ["--tls-cert", missing, "--tls-key", str(first.key_file)]
    assert main(["serve", "--config", str(config), *unreadable]) == EXIT_INVALID
    assert f"--tls-cert: cannot read {missing}" in capsys.readouterr().err

    mismatched = ["--tls-cert", str(first.cert_file), "--tls-key", str(second.key_file)]
    assert main(["serve", "--config", str(config), *mismatched]) == EXIT_INVALID
    error = capsys.readouterr().err
    assert "--tls-cert and --tls-key" in error
    assert "do not match" in error
    assert "PRIVATE KEY" not in error


def test_tls_from_the_configuration_is_checked_as_well(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        {"probe": stdio_service()},
        free_port(),
        tls={"certFile": str(tmp_path / "missing.pem"), "keyFile": str(tmp_path / "key.pem")},
    )
    assert main(["serve", "--config", str(config)]) == EXIT_INVALID
    assert "proxy.tls.certFile: cannot read" in capsys.readouterr().err

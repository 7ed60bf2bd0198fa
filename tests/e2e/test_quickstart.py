"""The README's first command: the gateway on the offline quickstart config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.servers.conformance import REPO_ROOT, running_server
from tests.support.clients import connect, text_of
from tests.support.net import free_port

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("endpoint", "transport"), [("mcp", "streamable-http"), ("sse", "sse")])
async def test_quickstart_config_serves_the_demo_server(
    tmp_path: Path, endpoint: str, transport: str
) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "mcp_front.cli", "serve",
        "--config", "examples/quickstart.json", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with running_server(
        command, port=port, url=f"http://127.0.0.1:{port}", cwd=REPO_ROOT, log_path=tmp_path / "log"
    ):
        url = f"http://127.0.0.1:{port}/demo/{endpoint}"
        async with connect(url, token="dev-token-123", transport=transport) as client:  # type: ignore[arg-type]
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"echo", "add", "now", "whoami"} <= names
            assert text_of(await client.call_tool("whoami", {})) == "dev@example.com"
            added = await client.call_tool("add", {"a": 2, "b": 3})
            assert added.structured_content is not None

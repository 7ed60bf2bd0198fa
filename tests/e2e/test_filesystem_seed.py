"""The README's filesystem example, served by `mcp-front serve` as a real process.

The configuration is the JSON block of README.md itself, with two changes a test
needs: a free port instead of 8080 and a fresh folder instead of /tmp. The gateway runs
in `tests/node`, so `npx -y @modelcontextprotocol/server-filesystem` finds the pinned
package installed there and needs no network.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.servers.conformance import (
    NODE_BIN_DIR,
    NODE_MODULES,
    NODE_PROJECT,
    REPO_ROOT,
    ServerProcess,
    node_environment,
    running_server,
)
from tests.support.clients import Transport, auth_headers, connect, text_of
from tests.support.net import free_port
from tests.support.raw import ACCEPT, initialize_message

pytestmark = pytest.mark.e2e

README = REPO_ROOT / "README.md"
FILESYSTEM_PACKAGE = NODE_MODULES / "@modelcontextprotocol" / "server-filesystem" / "package.json"
JSON_BLOCK = re.compile(r"^```json\n(.*?)^```", re.MULTILINE | re.DOTALL)
README_PORT = 8080
README_FOLDER = "/tmp"
NOTE = "Written by the test, read through the gateway.\nSecond line: ✓\n"


def readme_seed_config() -> dict[str, Any]:
    """The README's JSON configuration block that runs the filesystem server."""
    blocks: list[dict[str, Any]] = [json.loads(block) for block in JSON_BLOCK.findall(README.read_text())]
    seeds = [block for block in blocks if "filesystem" in block.get("mcpServers", {})]
    assert len(seeds) == 1, "README.md should hold exactly one filesystem configuration block"
    return seeds[0]


def adapted(config: dict[str, Any], *, port: int, folder: Path) -> dict[str, Any]:
    """`config` on `port` instead of 8080, exposing (and letting its sandbox write to) `folder`
    instead of /tmp; nothing else changes."""
    text = json.dumps(config).replace(f":{README_PORT}", f":{port}")
    result: dict[str, Any] = json.loads(text)
    service = result["mcpServers"]["filesystem"]
    assert service["args"][-1] == README_FOLDER
    service["args"][-1] = str(folder)
    writable = service["sandbox"]["writablePaths"]
    writable[writable.index(README_FOLDER)] = str(folder)
    assert result["proxy"]["addr"] == f":{port}"
    return result


def test_the_readme_seed_config_is_the_documented_one() -> None:
    config = readme_seed_config()
    service = config["mcpServers"]["filesystem"]
    assert service["transportType"] == "stdio"
    assert [service["command"], *service["args"]] == [
        "npx",
        "-y",
        "@modelcontextprotocol/server-filesystem",
        README_FOLDER,
    ]
    assert service["serviceAuths"] == [{"type": "bearer", "tokens": ["dev-token-123"]}]
    assert service["sandbox"] == {"writablePaths": ["~/.npm", README_FOLDER]}


@pytest.fixture(scope="module")
def shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shared")
    (folder / "notes.txt").write_text(NOTE, encoding="utf-8")
    (folder / "reports").mkdir()
    return folder


@pytest.fixture(scope="module")
def seed_gateway(tmp_path_factory: pytest.TempPathFactory, shared_folder: Path) -> Iterator[ServerProcess]:
    """The seed configuration served by `mcp-front serve`, listening on loopback only."""
    if not (NODE_BIN_DIR / "node").is_file() or not FILESYSTEM_PACKAGE.is_file():
        pytest.fail("the pinned Node.js tools are missing: run `npm ci --prefix tests/node`", pytrace=False)
    directory = tmp_path_factory.mktemp("seed")
    port = free_port()
    config_path = directory / "config.json"
    config_path.write_text(json.dumps(adapted(readme_seed_config(), port=port, folder=shared_folder)))
    # The README's `addr` is ":8080" (every interface); a test listens on loopback only.
    command = [sys.executable, "-m", "mcp_front.cli", "serve", "--config", str(config_path)]
    command += ["--host", "127.0.0.1"]
    with running_server(
        command,
        port=port,
        url=f"http://127.0.0.1:{port}",
        cwd=NODE_PROJECT,
        env=node_environment(),
        log_path=directory / "gateway.log",
    ) as server:
        yield server


@pytest.mark.parametrize(("transport", "endpoint"), [("streamable-http", "mcp"), ("sse", "sse")])
async def test_filesystem_tools_read_a_file_through_the_gateway(
    seed_gateway: ServerProcess, shared_folder: Path, transport: Transport, endpoint: str
) -> None:
    url = f"{seed_gateway.url}/filesystem/{endpoint}"
    async with connect(url, token="dev-token-123", transport=transport) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"read_text_file", "list_directory", "list_allowed_directories"} <= tools, seed_gateway.log()

        allowed = text_of(await client.call_tool("list_allowed_directories", {}))
        assert str(shared_folder.resolve()) in allowed

        listing = text_of(await client.call_tool("list_directory", {"path": str(shared_folder)}))
        assert "[FILE] notes.txt" in listing
        assert "[DIR] reports" in listing

        read = await client.call_tool("read_text_file", {"path": str(shared_folder / "notes.txt")})
        assert not read.is_error
        assert text_of(read) == NOTE


async def test_filesystem_server_refuses_paths_outside_the_configured_folder(
    seed_gateway: ServerProcess,
) -> None:
    async with connect(f"{seed_gateway.url}/filesystem/mcp", token="dev-token-123") as client:
        result = await client.call_tool("read_text_file", {"path": str(README)})
        assert result.is_error
        assert "outside allowed directories" in text_of(result)
        assert "# mcp-front" not in text_of(result)


@pytest.mark.parametrize("token", [None, "not-dev-token"])
async def test_the_seed_token_is_required(seed_gateway: ServerProcess, token: str | None) -> None:
    async with httpx2.AsyncClient(headers=auth_headers(token)) as http:
        response = await http.post(
            f"{seed_gateway.url}/filesystem/mcp", json=initialize_message(), headers={"Accept": ACCEPT}
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")

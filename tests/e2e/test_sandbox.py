"""Stdio children run sandboxed: no child sees the gateway's environment, another user's
process, the gateway's files or another child's /tmp."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from mcp import Client

from mcp_front.backends.sandbox import Bubblewrap
from tests.support.clients import connect, mcp_error_in, text_of
from tests.support.gateway import UNSANDBOXED, bearer, running_gateway, stdio_service
from tests.unit.auth.authorize.conftest import FakeIdP

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def bubblewrap_installed() -> None:
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is missing: apt-get install bubblewrap", pytrace=False)


def two_users(**extra: Any) -> dict[str, Any]:
    return stdio_service(
        env={"USER_CREDENTIAL": "credential-of-{{principal.email}}"},
        serviceAuths=[
            bearer("alice-token", user="alice@example.com"),
            bearer("bob-token", user="bob@example.com"),
        ],
        **extra,
    )


async def read(client: Client, path: str) -> str:
    return text_of(await client.call_tool("read_file", {"path": path}))


def host_pid_of_child_with(marker: str) -> int:
    """The host process id of the test's descendant whose environment holds `marker`."""
    for child in psutil.Process().children(recursive=True):
        try:
            if marker in child.environ().get("USER_CREDENTIAL", ""):
                return child.pid
        except psutil.Error:
            continue
    raise AssertionError(f"no child holds {marker}")


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unsandboxed"])
async def test_a_child_sees_neither_the_gateway_nor_another_users_child(sandboxed: bool) -> None:
    service = two_users() if sandboxed else two_users(sandbox=UNSANDBOXED)
    async with running_gateway({"probe": service}) as gw:
        url = gw.service_url("probe")
        async with connect(url, token="alice-token") as alice, connect(url, token="bob-token") as bob:
            await bob.call_tool("echo", {"text": "started"})
            bob_pid = host_pid_of_child_with("credential-of-bob@example.com")
            gateway_environ = await read(alice, f"/proc/{os.getpid()}/environ")
            bob_environ = await read(alice, f"/proc/{bob_pid}/environ")
            visible = (await alice.call_tool("processes", {})).structured_content
            status = await read(alice, "/proc/self/status")
    assert visible is not None
    capabilities = next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff"))
    if sandboxed:
        # None, even where the gateway runs as root: with them it could unmount the stand-ins.
        assert capabilities == "0000000000000000"
        assert gateway_environ.startswith("<FileNotFoundError")
        assert "credential-of-bob" not in bob_environ
        assert bob_environ.startswith("<FileNotFoundError")
        # Its own namespace: bubblewrap's init and the server, nothing else.
        assert visible["result"] == [1, 2]
    else:
        # What the sandbox prevents, shown: without it the secrets are there to read.
        assert "PATH=" in gateway_environ
        assert "credential-of-bob@example.com" in bob_environ
        assert os.getpid() in visible["result"]


async def test_the_gateways_files_are_hidden_and_the_rest_is_read_only(outside_tmp: Path) -> None:
    tmp_path = outside_tmp
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("s3cr3t-from-a-file\n")
    readable = tmp_path / "readable.txt"
    readable.write_text("anyone may read this")
    writable = tmp_path / "cache"
    writable.mkdir()
    service = two_users(sandbox={"writablePaths": [str(writable)]})
    other = stdio_service(env={"TOKEN": {"$file": str(secret_file)}}, serviceAuths=[bearer("alice-token")])
    async with running_gateway({"probe": service, "other": other}) as gw:
        assert secret_file in gw.gateway.config.files
        async with connect(gw.service_url("probe"), token="alice-token") as alice:
            assert await read(alice, str(secret_file)) == "<PermissionError: Permission denied>"
            assert await read(alice, str(readable)) == "anyone may read this"
            refused = text_of(await alice.call_tool("write_file", {"path": str(tmp_path / "x"), "text": "x"}))
            assert refused == "<OSError: Read-only file system>"
            allowed = {"path": str(writable / "entry"), "text": "cached"}
            assert text_of(await alice.call_tool("write_file", allowed)) == "written"
    assert (writable / "entry").read_text() == "cached"
    assert not (tmp_path / "x").exists()


async def test_each_child_has_its_own_tmp() -> None:
    async with running_gateway({"probe": two_users()}) as gw:
        url = gw.service_url("probe")
        async with connect(url, token="alice-token") as alice, connect(url, token="bob-token") as bob:
            note = {"path": "/tmp/mcp-front-sandbox-note", "text": "alice was here"}
            assert text_of(await alice.call_tool("write_file", note)) == "written"
            assert await read(alice, note["path"]) == "alice was here"
            assert (await read(bob, note["path"])).startswith("<FileNotFoundError")
    assert not Path(note["path"]).exists()


async def test_a_sandboxed_child_is_reaped_and_respawned_sandboxed() -> None:
    proxy = {"sessions": {"timeout": "300ms", "cleanupInterval": "100ms"}}
    async with running_gateway({"probe": two_users()}, proxy=proxy) as gw:
        async with connect(gw.service_url("probe"), token="alice-token") as alice:
            first = text_of(await alice.call_tool("instance", {}))
            with anyio.fail_after(10):
                while gw.gateway.pool.process_count:
                    await anyio.sleep(0.05)
            assert text_of(await alice.call_tool("instance", {})) != first
            visible = (await alice.call_tool("processes", {})).structured_content
            assert visible is not None
            assert visible["result"] == [1, 2]


async def test_without_a_sandbox_a_child_holding_credentials_does_not_start() -> None:
    manual = {"type": "manual", "displayName": "Notion", "instructions": "Paste your token"}
    credentials = stdio_service(
        requiresUserToken=True,
        userAuthentication=manual,
        env={"NOTION_TOKEN": {"$userToken": "{{token}}"}},
        serviceAuths=[bearer("alice-token", user="alice@example.com")],
    )
    credentials["serviceAuths"][0]["userToken"] = "alice-notion-token"
    plain = stdio_service(serviceAuths=[bearer("alice-token", user="alice@example.com")])
    allowed = {**credentials, "sandbox": {"allowUnsandboxedCredentials": True}}
    servers = {"notion": credentials, "plain": plain, "allowed": allowed}
    async with running_gateway(servers, proxy=auth_proxy(), identity_provider=FakeIdP()) as gw:
        # A host where bubblewrap cannot create namespaces answers like `false`.
        gw.gateway.pool.sandbox = Bubblewrap(executable=shutil.which("false"))
        warnings = await gw.gateway.pool.sandbox_warnings()
        assert any("cannot be sandboxed" in warning for warning in warnings)
        assert any(warning.startswith("service notion will not start") for warning in warnings)
        with pytest.raises(Exception) as raised:  # noqa: PT011 - the MCPError inside is checked below
            async with connect(gw.service_url("notion"), token="alice-token"):
                pass
        error = mcp_error_in(raised.value)
        assert error is not None, raised.value
        assert error.error.message == (
            "service 'notion' is not started: it would hold your own credential, and the gateway "
            "cannot sandbox its processes here (see the gateway's log)"
        )
        async with connect(gw.service_url("plain"), token="alice-token") as client:
            assert text_of(await client.call_tool("echo", {"text": "unsandboxed"})) == "unsandboxed"
        async with connect(gw.service_url("allowed"), token="alice-token") as client:
            assert text_of(await client.call_tool("env", {"name": "NOTION_TOKEN"})) == "alice-notion-token"


def auth_proxy() -> dict[str, Any]:
    """Users' own tokens need sign-in configured, even where a static credential carries one."""
    return {
        "auth": {
            "kind": "oauth",
            "issuer": "http://127.0.0.1:1",
            "allowedDomains": ["example.com"],
            "idp": {
                "provider": "oidc",
                "discoveryUrl": "http://127.0.0.1:1/.well-known/openid-configuration",
                "clientId": "x",
                "clientSecret": "y",
                "redirectUri": "http://127.0.0.1:1/oauth/callback",
            },
            "encryptionKey": "1" * 32,
            "storage": {"kind": "memory"},
        }
    }


def test_validate_warns_when_bubblewrap_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    tools = {"transportType": "inline", "inline": {"tools": [{"name": "day", "command": "date"}]}}
    servers = {
        "probe": stdio_service(serviceAuths=[bearer("t0k3n")]),
        "tools": {**tools, "serviceAuths": [bearer("t")]},
    }
    config.write_text(json.dumps({"mcpServers": servers}))
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mcp-front"), "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "warning: stdio processes of probe cannot be sandboxed: bubblewrap is not installed" in result.stderr
    )
    assert "warning: command tools of tools run unsandboxed: bubblewrap is not installed" in result.stderr

"""Inline command tools run sandboxed as stdio children do: a command sees neither the
gateway's environment nor its files nor another process, writes nowhere it was not
allowed to, and leaves nothing running when its call ends."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from mcp_front.backends.sandbox import Bubblewrap
from tests.support.clients import connect, text_of
from tests.support.gateway import UNSANDBOXED, bearer, running_gateway

pytestmark = pytest.mark.e2e

PROBE = """
import json, os, sys

def read(path):
    try:
        with open(path, "rb") as file:
            return file.read().decode(errors="replace")
    except OSError as error:
        return f"<{type(error).__name__}>"

def write(path):
    try:
        with open(path, "w") as file:
            file.write("x")
        return "written"
    except OSError as error:
        return f"<{type(error).__name__}: {error.strerror}>"

def set_kernel_setting():
    # Its own value again: harmless wherever the write goes through.
    path = "/proc/sys/kernel/core_pattern"
    try:
        with open(path) as current:
            value = current.read()
        with open(path, "w") as setting:
            setting.write(value)
        return "written"
    except OSError as error:
        return f"<{type(error).__name__}: {error.strerror}>"

def capabilities():
    status = read("/proc/self/status").splitlines()
    return next(line.split()[1] for line in status if line.startswith("CapEff"))

print(json.dumps({
    "gateway_environ": read(f"/proc/{sys.argv[1]}/environ"),
    "secret_file": read(sys.argv[2]),
    "processes": sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit()),
    "host_tmp_entry": os.path.exists(sys.argv[3]),
    "capabilities": capabilities(),
    "kernel_setting": set_kernel_setting(),
    "outside": write(sys.argv[4]),
    "allowed": write(sys.argv[5]),
}))
"""


@pytest.fixture(autouse=True)
def bubblewrap_installed() -> None:
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is missing: apt-get install bubblewrap", pytrace=False)


def tools_service(*tools: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "transportType": "inline",
        "serviceAuths": [bearer("t0k3n")],
        "inline": {"tools": list(tools)},
        **extra,
    }


def command_tool(name: str, command: str, *args: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "command": command, "args": list(args), **extra}


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unsandboxed"])
async def test_a_command_sees_neither_the_gateway_nor_its_files(
    sandboxed: bool, outside_tmp: Path, tmp_path: Path
) -> None:
    secret_file = outside_tmp / "api-key"
    secret_file.write_text("s3cr3t-from-a-file")
    host_tmp_entry = tmp_path / "on-the-host"
    host_tmp_entry.write_text("x")
    allowed = outside_tmp / "cache"
    allowed.mkdir()
    probe = command_tool(
        "probe", sys.executable, "-c", PROBE, str(os.getpid()), str(secret_file), str(host_tmp_entry),
        str(outside_tmp / "written"), str(allowed / "written"),
        env={"API_KEY": {"$file": str(secret_file)}},
    )  # fmt: skip
    sandbox = {"writablePaths": [str(allowed)]} if sandboxed else UNSANDBOXED
    async with running_gateway({"tools": tools_service(probe, sandbox=sandbox)}) as gw:
        assert secret_file in gw.gateway.config.files
        async with connect(gw.service_url("tools"), token="t0k3n") as client:
            result = await client.call_tool("probe", {})
    assert not result.is_error, text_of(result)
    seen = json.loads(text_of(result))
    if sandboxed:
        assert seen["gateway_environ"] == "<FileNotFoundError>"
        assert seen["secret_file"] == "<PermissionError>"
        # Its own process namespace: bubblewrap's init and the command, nothing else.
        assert seen["processes"] == [1, 2]
        # None, even where the gateway runs as root: with them it could unmount the stand-ins.
        assert seen["capabilities"] == "0000000000000000"
        # Nor the kernel's settings, which check ownership only: as root they were a way out.
        assert seen["kernel_setting"] == "<OSError: Read-only file system>"
        assert seen["host_tmp_entry"] is False
        assert seen["outside"] == "<OSError: Read-only file system>"
        assert not (outside_tmp / "written").exists()
    else:
        # What the sandbox prevents, shown: without it all of this is there to take.
        assert "PATH=" in seen["gateway_environ"]
        # Read, and only redacted in the answer because it is the tool's own secret.
        assert seen["secret_file"] == "…"
        assert os.getpid() in seen["processes"]
        assert seen["host_tmp_entry"] is True
        assert seen["outside"] == "written"
    assert seen["allowed"] == "written"
    assert (allowed / "written").read_text() == "x"


async def test_failures_inside_the_sandbox_read_as_outside() -> None:
    missing = command_tool("missing", "no-such-program-mcp-front")
    killed = command_tool(
        "killed", sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    )
    failed = command_tool("failed", sys.executable, "-c", "import sys; sys.exit('went wrong')")
    async with running_gateway({"tools": tools_service(missing, killed, failed)}) as gw:
        async with connect(gw.service_url("tools"), token="t0k3n") as client:
            missing_result = await client.call_tool("missing", {})
            killed_result = await client.call_tool("killed", {})
            failed_result = await client.call_tool("failed", {})
    assert missing_result.is_error
    assert text_of(missing_result) == (
        "missing could not start no-such-program-mcp-front: No such file or directory"
    )
    assert killed_result.is_error
    assert text_of(killed_result) == "killed exited with status 137 (killed by signal 9)"
    assert failed_result.is_error
    assert text_of(failed_result) == "failed exited with status 1:\nwent wrong"


def sandboxed_descendants() -> list[psutil.Process]:
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.name() in {"bwrap", "sleep"}:
                found.append(process)
        except psutil.Error:
            continue
    return found


async def test_a_call_out_of_time_leaves_nothing_running() -> None:
    lingering = command_tool("linger", "sh", "-c", "sleep 120 & sleep 120 & wait", timeout="1s")
    async with running_gateway({"tools": tools_service(lingering)}) as gw:
        async with connect(gw.service_url("tools"), token="t0k3n") as client:
            async with anyio.create_task_group() as task_group:
                outcome: list[str] = []

                async def call() -> None:
                    outcome.append(text_of(await client.call_tool("linger", {})))

                task_group.start_soon(call)
                with anyio.fail_after(30):
                    while not any(p.name() == "sleep" for p in sandboxed_descendants()):
                        await anyio.sleep(0.05)
            assert outcome == ["linger did not finish within 1s and was stopped"]
            with anyio.fail_after(10):
                while sandboxed_descendants():
                    await anyio.sleep(0.05)


async def test_where_no_sandbox_can_be_had_commands_run_unsandboxed_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Who runs the tests is not the subject here: the warning about root is.
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    environ = command_tool(
        "environ", sys.executable, "-c", f"print(open('/proc/{os.getpid()}/environ').read())"
    )
    async with running_gateway({"tools": tools_service(environ)}) as gw:
        assert await gw.gateway.sandbox_warnings() == []
        # A host where bubblewrap cannot create namespaces answers like `false`.
        gw.gateway.inline.sandbox = Bubblewrap(executable=shutil.which("false"))
        warnings = await gw.gateway.sandbox_warnings()
        assert len(warnings) == 1
        assert warnings[0].startswith("command tools of tools run unsandboxed: bubblewrap cannot create")
        async with connect(gw.service_url("tools"), token="t0k3n") as client:
            result = await client.call_tool("environ", {})
    assert not result.is_error
    assert "PATH=" in text_of(result)


async def test_files_reached_through_a_link_are_hidden_where_they_are(outside_tmp: Path) -> None:
    real = outside_tmp / "real"
    real.mkdir()
    (real / "api-key").write_text("s3cr3t-behind-a-link")
    (outside_tmp / "link").symlink_to(real)
    through_link = outside_tmp / "link" / "api-key"
    script = (
        "import os, sys; print(len(os.listdir('/proc')) > 0, *(open(p, 'rb').read() for p in sys.argv[1:]))"
    )
    reader = command_tool(
        "reader", sys.executable, "-c", script, str(through_link), str(real / "api-key"),
        env={"API_KEY": {"$file": str(through_link)}},
    )  # fmt: skip
    async with running_gateway({"tools": tools_service(reader)}) as gw:
        assert (await gw.gateway.inline.sandbox.check()).available
        async with connect(gw.service_url("tools"), token="t0k3n") as client:
            result = await client.call_tool("reader", {})
    # Sandboxed, not run without one: the file could not be read under either name.
    assert result.is_error
    assert "PermissionError" in text_of(result)
    assert "s3cr3t" not in text_of(result)

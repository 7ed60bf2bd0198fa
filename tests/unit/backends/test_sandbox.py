import json
import os
import shutil
import site
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mcp_front.backends.sandbox import Bubblewrap, SandboxPathRefused, gateway_files
from mcp_front.config import ConfigError, SandboxConfig, load_config
from mcp_front.gateway import Gateway, GatewayError


def test_the_command_confines_the_child_and_hides_the_gateways_files(tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text("{}")
    state = tmp_path / "state"
    state.mkdir()
    sandbox = Bubblewrap([config_file, state, tmp_path / "absent"], executable="/usr/bin/bwrap")
    servers, cache, service = tmp_path / "servers", tmp_path / "cache", tmp_path / "service"
    for folder in (servers, cache, service):
        folder.mkdir()
    settings = SandboxConfig(
        network=False,
        readable_paths=[str(servers), str(tmp_path / "not-yet")],
        writable_paths=[str(cache)],
        hidden_paths=[str(tmp_path / "keys")],
    )

    argv = sandbox.command(["npx", "server"], settings, cwd=str(service))

    assert argv[:4] == ["/usr/bin/bwrap", "--die-with-parent", "--cap-drop", "ALL"]
    assert argv[-3:] == ["--", "npx", "server"]
    joined = " ".join(argv)
    assert "--ro-bind / / --dev /dev --proc /proc --ro-bind /proc/sys /proc/sys" in joined
    assert "--ro-bind-try /proc/sysrq-trigger /proc/sysrq-trigger --tmpfs /tmp" in joined
    for namespace in ("--unshare-pid", "--unshare-ipc", "--unshare-net"):
        assert namespace in argv
    assert f"--ro-bind /dev/null {config_file}" in joined
    assert f"--tmpfs {state}" in joined
    assert str(tmp_path / "absent") not in joined
    assert f"--bind {cache} {cache}" in joined
    assert f"--ro-bind {service} {service}" in joined
    assert f"--chdir {service}" in joined
    assert f"--ro-bind {servers} {servers}" in joined
    # Missing now: not bound, so that a link put there later is not followed.
    assert "not-yet" not in joined
    assert "--unshare-net" not in sandbox.command(["x"], SandboxConfig(), cwd=None)


def test_copies_beside_a_hidden_file_are_hidden_too(tmp_path: Path) -> None:
    audit = tmp_path / "audit.log"
    audit.write_text("{}\n")
    rotated = [
        tmp_path / "audit.log.1",
        tmp_path / "audit.log.2.gz",
        tmp_path / "audit.log-20261205",
        tmp_path / "audit.log-20261204.gz",
        tmp_path / "audit.log~",
        tmp_path / "audit.log_old",
        tmp_path / ".audit.log.swp",
        tmp_path / "#audit.log#",
        tmp_path / ".~lock.audit.log#",
    ]
    for copy in rotated:
        copy.write_text("{}\n")
    (tmp_path / "audit.logger").write_text("another file")
    (tmp_path / "audit.log.link").symlink_to("/etc/hostname")
    sandbox = Bubblewrap([audit, tmp_path / "gone.log"], executable="/usr/bin/bwrap")
    (tmp_path / "gone.log.1").write_text("rotated, the live file not yet made again")

    joined = " ".join(sandbox.command(["x"], SandboxConfig(), cwd=None))

    for copy in [audit, *rotated, tmp_path / "gone.log.1"]:
        assert f"--ro-bind /dev/null {copy} " in joined
    assert "audit.logger" not in joined
    assert "audit.log.link" not in joined
    # Found at each start: a copy made later is hidden from the next process.
    (tmp_path / "audit.log.3").write_text("{}\n")
    assert f"--ro-bind /dev/null {tmp_path / 'audit.log.3'} " in " ".join(
        sandbox.command(["x"], SandboxConfig(), cwd=None)
    )


async def test_a_missing_bubblewrap_is_reported_with_the_fix() -> None:
    sandbox = Bubblewrap()
    sandbox.executable = None
    result = await sandbox.check()
    assert not result.available
    assert result.problem == (
        "bubblewrap is not installed: install it (Debian and Ubuntu: apt-get install bubblewrap)"
    )


async def test_a_bubblewrap_that_fails_is_reported_once() -> None:
    sandbox = Bubblewrap(executable="/bin/false")
    first = await sandbox.check()
    assert not first.available
    assert first.problem is not None
    assert first.problem.startswith("bubblewrap cannot create a sandbox here")
    assert await sandbox.check() is first


@pytest.mark.parametrize(
    ("euid", "fix"),
    [
        (0, "run the gateway as a user other than root, or give it CAP_SYS_ADMIN"),
        (1000, "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"),
    ],
)
async def test_the_fix_offered_depends_on_who_runs_the_gateway(
    euid: int, fix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: euid)
    check = await Bubblewrap(executable="/bin/false").check()
    assert check.problem is not None
    assert fix in check.problem


def test_the_gateways_files_are_its_config_secrets_database_and_audit_log(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s")
    config_file = tmp_path / "config.json"
    auth = {
        "kind": "oauth",
        "issuer": "https://gw.example",
        "allowedDomains": ["example.com"],
        "encryptionKey": "k" * 32,
        "storage": {"kind": "sqlite", "path": str(tmp_path / "db.sqlite3")},
        "idp": {
            "provider": "google",
            "clientId": "c",
            "clientSecret": {"$file": str(secret)},
            "redirectUri": "https://gw.example/oauth/callback",
        },
    }
    proxy = {"audit": {"file": str(tmp_path / "audit.jsonl")}, "auth": auth}
    config_file.write_text(json.dumps({"proxy": proxy}))
    files = gateway_files(load_config(config_file))
    database = tmp_path / "db.sqlite3"
    assert files == [
        config_file,
        secret,
        database,
        tmp_path / "db.sqlite3-wal",
        tmp_path / "db.sqlite3-shm",
        tmp_path / "db.sqlite3-journal",
        tmp_path / "audit.jsonl",
    ]


@pytest.mark.parametrize(
    "storage",
    [
        {"kind": "postgres", "url": "postgresql:///mcp"},
        {"kind": "redis", "url": "unix:///run/redis/redis.sock"},
    ],
    ids=["postgres", "redis"],
)
def test_a_database_servers_local_sockets_are_hidden_with_a_shared_store(storage: dict[str, str]) -> None:
    auth = {
        "kind": "oauth",
        "issuer": "https://gw.example",
        "encryptionKey": "k" * 32,
        "allowedDomains": ["example.com"],
    }
    auth["storage"] = storage
    files = gateway_files(load_config({"proxy": {"auth": auth}}))
    assert {Path("/run/postgresql"), Path("/run/redis")} <= set(files)
    assert Path("/run/postgresql") not in gateway_files(
        load_config({"proxy": {"auth": {**auth, "storage": "sqlite"}}})
    )


def test_a_path_reached_through_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    sandbox = Bubblewrap(executable="/usr/bin/bwrap")
    with pytest.raises(SandboxPathRefused, match="reached through a symbolic link"):
        sandbox.command(["x"], SandboxConfig(writable_paths=[str(tmp_path / "link")]), cwd=None)
    with pytest.raises(SandboxPathRefused):
        sandbox.command(["x"], SandboxConfig(), cwd=str(tmp_path / "link"))
    assert "--bind" in sandbox.command(["x"], SandboxConfig(writable_paths=[str(real)]), cwd=None)


def test_a_path_inside_a_writable_one_is_a_configuration_error() -> None:
    with pytest.raises(ValidationError) as raised:
        SandboxConfig(writable_paths=["/srv/shared", "/srv/shared/cache"], readable_paths=["/srv/shared/x"])
    text = str(raised.value)
    assert "lies inside the writable path /srv/shared" in text
    assert SandboxConfig(writable_paths=["/srv/a", "/srv/ab"]).writable_paths == ["/srv/a", "/srv/ab"]


def test_a_path_inside_another_services_writable_path_is_a_configuration_error() -> None:
    tools = {"tools": [{"name": "t", "command": "true"}]}
    servers = {
        "a": {"transportType": "stdio", "command": "a", "sandbox": {"writablePaths": ["/srv/shared"]}},
        "b": {"transportType": "inline", "inline": tools, "sandbox": {"writablePaths": ["/srv/shared/out"]}},
        "c": {"transportType": "stdio", "command": "c", "cwd": "/srv/shared/c"},
        "d": {"transportType": "stdio", "command": "d", "sandbox": {"readablePaths": ["/srv/shared/d"]}},
        "e": {
            "transportType": "stdio",
            "command": "e",
            "cwd": "/srv/own/e",
            "sandbox": {"writablePaths": ["/srv/own"]},
        },
        # Unsandboxed: it binds nothing.
        "f": {
            "transportType": "stdio",
            "command": "f",
            "cwd": "/srv/shared/f",
            "sandbox": {"enabled": False},
        },
        "g": {"transportType": "stdio", "command": "g", "sandbox": {"writablePaths": ["/srv/shared"]}},
    }
    with pytest.raises(ConfigError) as raised:
        load_config({"mcpServers": servers}, environ={})
    located = sorted(issue.path for issue in raised.value.issues)
    assert located == [
        "mcpServers.b.sandbox.writablePaths[0]",
        "mcpServers.c.cwd",
        "mcpServers.d.sandbox.readablePaths[0]",
        "mcpServers.e.cwd",
    ]
    assert "lies inside mcpServers.a.sandbox.writablePaths[0] (/srv/shared)" in str(raised.value)


def test_a_writable_path_that_holds_the_gateways_files_is_refused(tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    service = {"transportType": "stdio", "command": "x", "sandbox": {"writablePaths": [str(tmp_path)]}}
    config_file.write_text(json.dumps({"mcpServers": {"files": service}}))
    with pytest.raises(GatewayError) as raised:
        Gateway(load_config(config_file))
    assert str(raised.value) == (
        f"mcpServers.files.sandbox.writablePaths[0]: holds the gateway's own {config_file}, which the "
        "service's processes could replace; keep the gateway's files out of it"
    )
    service["sandbox"] = {"writablePaths": [str(tmp_path / "cache")]}
    config_file.write_text(json.dumps({"mcpServers": {"files": service}}))
    assert "files" in Gateway(load_config(config_file)).services


async def test_an_unsandboxed_service_beside_others_is_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    tools = {"tools": [{"name": "t", "command": "true"}]}
    plain = {"transportType": "stdio", "command": "x"}
    servers = {
        "open": {**plain, "sandbox": {"enabled": False}},
        "tools": {"transportType": "inline", "inline": tools},
        "web": {"transportType": "sse", "url": "http://127.0.0.1:1/sse"},
    }
    gateway = Gateway(load_config({"mcpServers": servers}, environ={}))
    gateway.pool.sandbox = gateway.inline.sandbox = Bubblewrap(executable=shutil.which("true"))
    assert await gateway.sandbox_warnings() == [
        "mcpServers.open.sandbox.enabled is false: its processes can read the environment of every "
        "other service's processes, with their secrets and users' credentials"
    ]
    alone = Gateway(load_config({"mcpServers": {"open": servers["open"], "web": servers["web"]}}, environ={}))
    assert await alone.sandbox_warnings() == []


async def test_a_gateway_run_as_root_is_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    servers = {"files": {"transportType": "stdio", "command": "x"}}
    gateway = Gateway(load_config({"mcpServers": servers}, environ={}))
    gateway.pool.sandbox = Bubblewrap(executable=shutil.which("true"))
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert await gateway.sandbox_warnings() == [
        "the gateway runs as root: the processes it starts run as root too (without capabilities "
        "when sandboxed) and can read every file root can; run it as a user of its own"
    ]
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert await gateway.sandbox_warnings() == []


def test_a_path_another_user_could_swap_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = Bubblewrap(executable="/usr/bin/bwrap")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "inside").mkdir()
    shared.chmod(0o777)
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    (sticky / "ours").mkdir()
    sticky.chmod(0o1777)
    owners = {str(theirs): 1000}
    real_lstat = os.lstat

    def lstat(path: str | os.PathLike[str]) -> os.stat_result:
        status = real_lstat(path)
        uid = owners.get(str(path))
        return status if uid is None else os.stat_result((*status[:4], uid, *status[5:]))

    monkeypatch.setattr("os.lstat", lstat)
    with pytest.raises(SandboxPathRefused, match=r"belongs to another user \(uid 1000\)"):
        sandbox.command(["x"], SandboxConfig(readable_paths=[str(theirs)]), cwd=None)
    with pytest.raises(SandboxPathRefused, match="can be written by other users"):
        sandbox.command(["x"], SandboxConfig(writable_paths=[str(shared / "inside")]), cwd=None)
    # A sticky folder lets no one move what is not theirs; what lies in it is ours here.
    allowed = sandbox.command(["x"], SandboxConfig(readable_paths=[str(sticky / "ours")]), cwd=str(shared))
    assert f"--ro-bind {sticky / 'ours'} {sticky / 'ours'}" in " ".join(allowed)


@pytest.mark.parametrize(
    "writable",
    [
        sys.prefix,
        str(Path(sys.prefix).parent),
        site.getsitepackages()[0] + "/planted",
        str(Path(site.getsitepackages()[0]).parent),
        str(Path(os.path.realpath(sys.executable)).parent),
        os.getcwd() + "/uvicorn",
        site.getusersitepackages(),
    ],
    ids=[
        "the environment",
        "around it",
        "inside its packages",
        "between",
        "the interpreter",
        "the working folder",
        "the user site",
    ],
)
def test_a_writable_path_over_the_gateways_code_is_refused(writable: str) -> None:
    service = {"transportType": "stdio", "command": "x", "sandbox": {"writablePaths": [writable]}}
    with pytest.raises(GatewayError, match=r"writablePaths\[0\]: overlaps the gateway's own code"):
        Gateway(load_config({"mcpServers": {"files": service}}, environ={}))

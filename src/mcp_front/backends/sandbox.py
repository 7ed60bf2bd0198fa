"""`Bubblewrap`: each stdio child, and each run of an inline command, in a sandbox of its own.

Without one, every child runs as the gateway's user and can read `/proc/<pid>/environ` of
the gateway (its secrets) and of every other user's child (their credentials). Under
bubblewrap a child is PID 1 of a new PID namespace with a `/proc` of its own, so no
other process exists for it; it gets a private `/tmp`, sees the rest of the file system
read-only, and the gateway's configuration files and store are covered by unreadable
stand-ins (empty directories for directories). It holds no capability, even under a
gateway run as root.

Whether bubblewrap works here (installed, and allowed to create namespaces) is found out
once, by running it; `check()` says so, and why not.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import site
import stat
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from mcp_front.config import (
    GatewayConfig,
    PostgresStorage,
    RedisStorage,
    SandboxConfig,
    ServerConfig,
    SQLiteStorage,
)
from mcp_front.errors import MCPFrontError
from mcp_front.storage import MemoryStore, SQLiteStore, Store, sqlite_path

__all__ = [
    "BWRAP",
    "Bubblewrap",
    "SandboxCheck",
    "SandboxPathRefused",
    "gateway_files",
    "runnable",
    "writable_over_gateway_files",
]

logger = logging.getLogger("mcp_front.backends.stdio")

BWRAP = "bwrap"
_PROBE_TIMEOUT = 30.0
HOST_SOCKETS = tuple(
    Path(path) for path in ("/run/user", "/run/docker.sock", "/var/run/docker.sock", "/run/containerd")
)
"""Sockets through which a process could ask the host to run things for it (the user's
session bus, a container engine): a Unix socket is usable through a read-only mount."""
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
_KERNEL_SETTINGS_READ_ONLY = (
    *("--ro-bind", "/proc/sys", "/proc/sys"),
    *("--ro-bind-try", "/proc/sysrq-trigger", "/proc/sysrq-trigger"),
)
"""The sandbox's /proc is its own, but its kernel settings are the host's, and they check
ownership only: a child run as root (under a gateway run as root) could set
`kernel.core_pattern` to a program of its own, which the kernel runs as root outside."""
_NAMESPACES = ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try")


class SandboxPathRefused(MCPFrontError):
    """A path the sandbox would bind is reached through a symbolic link: refused, since a
    child could have planted it to have a later sandbox bind another place of the host."""


@dataclass(frozen=True, slots=True)
class SandboxCheck:
    """Whether children can be sandboxed here; `problem` says why not, and what to do."""

    available: bool
    problem: str | None = None


class Bubblewrap:
    """Wraps a child's command line in `bwrap` with the service's `sandbox` settings.

    `hidden` are the gateway's own files (configuration, `$file` secrets, the store):
    no child ever sees them.
    """

    def __init__(self, hidden: Iterable[Path] = (), *, executable: str | None = None) -> None:
        self.executable = executable or shutil.which(BWRAP)
        self.hidden = tuple(hidden)
        self._check: SandboxCheck | None = None
        self._lock = anyio.Lock()

    def hide(self, paths: Iterable[Path]) -> None:
        """Keep `paths` out of every child's sight too."""
        self.hidden = tuple(dict.fromkeys([*self.hidden, *paths]))

    async def check(self) -> SandboxCheck:
        """Whether bubblewrap runs here, found out by running it once."""
        async with self._lock:
            if self._check is None:
                self._check = await self._probe()
            return self._check

    def command(self, argv: Sequence[str], settings: SandboxConfig, *, cwd: str | None) -> list[str]:
        """`argv` run inside a sandbox set up by `settings`, starting in `cwd`."""
        if self.executable is None:
            raise RuntimeError("bubblewrap is not installed")
        # No capability inside: a gateway run as root would otherwise hand its child all of
        # them, and with them the power to unmount the stand-ins over the gateway's files.
        wrapped = [self.executable, "--die-with-parent", "--cap-drop", "ALL"]
        wrapped += ["--ro-bind", "/", "/", "--dev", "/dev"]
        wrapped += ["--proc", "/proc", *_KERNEL_SETTINGS_READ_ONLY]
        wrapped += ["--tmpfs", "/tmp", *_NAMESPACES]  # noqa: S108 (the child's own /tmp)
        if not settings.network:
            wrapped.append("--unshare-net")
        # Only what exists now, checked: a path missing at the check could be a link
        # another user puts there by the time bubblewrap binds it.
        binds = [
            # The service's own folder stays visible, even under /tmp.
            *(("--ro-bind", cwd) for _ in [cwd] if cwd is not None),
            *(("--ro-bind", readable) for readable in settings.readable_paths),
            *(("--bind", writable) for writable in settings.writable_paths),
        ]
        for option, bound in binds:
            if (resolved := _bindable(bound)) is not None:
                wrapped += [option, resolved, resolved]
        named = [*self.hidden, *HOST_SOCKETS, *(Path(_resolved(p)) for p in settings.hidden_paths)]
        real = [_real(path) for path in named]
        # Covered where they really are: a stand-in cannot be put through a link, and the
        # link itself then leads to the stand-in.
        for path in dict.fromkeys([*real, *(_real(copy) for copy in _copies_beside([*named, *real]))]):
            wrapped += _hiding(path)
        if cwd is not None:
            wrapped += ["--chdir", cwd]
        return [*wrapped, "--", *argv]

    async def _probe(self) -> SandboxCheck:
        if self.executable is None:
            return SandboxCheck(
                False,
                "bubblewrap is not installed: install it (Debian and Ubuntu: apt-get install bubblewrap)",
            )
        # Bubblewrap alone: whether a stand-in can be put somewhere is each start's
        # business, and a start that cannot put one fails instead of running unsandboxed.
        probe = Bubblewrap(executable=self.executable).command(["true"], SandboxConfig(), cwd=None)
        try:
            with anyio.fail_after(_PROBE_TIMEOUT):
                result = await anyio.run_process(probe, check=False, stdin=subprocess.DEVNULL)
        except (OSError, TimeoutError) as error:
            return SandboxCheck(False, f"bubblewrap could not be run: {error}")
        if result.returncode != 0:
            reason = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no reason given"]
            # Root without CAP_SYS_ADMIN (a hardened container) may not map itself into a
            # user namespace, where any other user may.
            fix = (
                "run the gateway as a user other than root, or give it CAP_SYS_ADMIN"
                if os.geteuid() == 0
                else "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) "
                "or run the gateway where it can"
            )
            return SandboxCheck(False, f"bubblewrap cannot create a sandbox here ({reason[0][:200]}); {fix}")
        return SandboxCheck(True)


def runnable(command: str, path: str | None, cwd: str | None) -> bool:
    """Whether `command` names a program a child can run, as the child would look it up:
    inside a sandbox a missing program is only bubblewrap's exit status."""
    if os.sep in command:
        return os.access(os.path.join(cwd or os.getcwd(), command), os.X_OK)
    return shutil.which(command, path=path if path is not None else os.environ.get("PATH")) is not None


def _real(path: Path) -> Path:
    try:
        return Path(os.path.realpath(path))
    except OSError:  # a loop of links: left as it is, and bubblewrap says so
        return path


def _resolved(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _bindable(path: str) -> str | None:
    """`path`, absolute, if no part of it is a symbolic link and no one else could swap it;
    None if it does not exist (it is not bound)."""
    resolved = _resolved(path)
    try:
        real = os.path.realpath(resolved, strict=False)
    except OSError as error:  # a link being swapped as it is read
        raise SandboxPathRefused(f"{path} could not be resolved: {error.strerror}") from None
    if real != resolved:
        raise SandboxPathRefused(
            f"{path} is reached through a symbolic link, which the sandbox does not follow"
        )
    if not _only_ours_on_the_way(path, resolved):
        return None
    return resolved


_COPIES = ("{}.*", "{}-*", "{}~*", "{}_*", ".{}.sw?", "#{}#", ".~lock.{}#")
"""How rotated logs, backups and editors name their copies of a file: `audit.log.1`,
`audit.log-20261205` (logrotate's `dateext`), `config.json~`, `config.json_old`, and
vim's, emacs's and LibreOffice's `.config.json.swp`, `#config.json#`, `.~lock.config.json#`."""


def _copies_beside(paths: Iterable[Path]) -> Iterator[Path]:
    """What lies beside each hidden file under its name and a suffix, found now: rotated
    audit logs and backups hold what the file holds. A symbolic link is left alone: one
    planted in a writable folder would otherwise have the sandbox cover whatever it points
    to."""
    for path in paths:
        if path.is_dir() or not path.parent.is_dir():
            continue
        for pattern in _COPIES:
            for copy in path.parent.glob(pattern.format(glob.escape(path.name))):
                if not copy.is_symlink():
                    yield copy


def _only_ours_on_the_way(path: str, resolved: str) -> bool:
    """Refuse `resolved` unless it and every folder on the way to it belong to root or the
    gateway's user, and no folder on the way can be written by anyone else (but for a
    sticky one, such as /tmp, where others may not move what is not theirs): another user
    could swap it for a link between this check and the bind, and have the sandbox bind
    the gateway's own folder. False if it does not exist."""
    trusted = {0, os.geteuid()}
    parts = Path(resolved).parts
    current = Path(parts[0])
    for depth in range(len(parts)):
        if depth:
            current = current / parts[depth]
        try:
            status = os.lstat(current)
        except FileNotFoundError:
            return False  # nothing to bind: checked again at the next start
        if status.st_uid not in trusted:
            raise SandboxPathRefused(
                f"{path}: {current} belongs to another user (uid {status.st_uid}), "
                "who could swap it for a link"
            )
        last = depth == len(parts) - 1
        if not last and status.st_mode & 0o022 and not status.st_mode & stat.S_ISVTX:
            raise SandboxPathRefused(
                f"{path}: {current} can be written by other users, who could swap what it holds for a link"
            )
    return True


def _hiding(path: Path) -> list[str]:
    """The arguments that put an empty stand-in over `path` (nothing for what does not exist)."""
    if path.is_dir():
        return ["--tmpfs", str(path)]
    if path.exists():
        return ["--ro-bind", os.devnull, str(path)]
    return []


_STORE_SOCKET_FOLDERS = sorted(
    {
        Path(folder).resolve()
        for folder in ("/run/postgresql", "/run/redis", "/var/run/postgresql", "/var/run/redis")
    }
)
"""Where PostgreSQL and Redis put their Unix sockets on Debian, Ubuntu, Fedora and their kin."""


def gateway_files(config: GatewayConfig, store: Store | None = None) -> list[Path]:
    """What no child may see: the configuration and its secret files, the store's database
    (that of `store` when the gateway was given one, else the configured one), and the
    audit log."""
    files = list(config.files)
    auth = config.proxy.auth
    database: Path | None = None
    if isinstance(store, SQLiteStore):
        database = store.path.absolute()
    elif store is None and auth is not None and isinstance(auth.storage, SQLiteStorage):
        database = sqlite_path(auth.storage).absolute()
    if database is not None:
        files += [database, *(database.with_name(database.name + end) for end in _SQLITE_COMPANIONS)]
    if config.proxy.audit is not None and config.proxy.audit.file is not None:
        files.append(Path(config.proxy.audit.file).expanduser().absolute())
    shared = store is not None and not isinstance(store, SQLiteStore | MemoryStore)
    if shared or (
        store is None and auth is not None and isinstance(auth.storage, RedisStorage | PostgresStorage)
    ):
        # A database server's local socket lets in whoever runs as the gateway's user, with
        # no password: through it a child could rewrite the store's grants.
        files += _STORE_SOCKET_FOLDERS
    return files


def _gateway_code() -> tuple[list[str], list[str]]:
    """Where the gateway's own code lies, as folder paths ending in "/": the folders a
    writable path must not hold (its Python installation and environment, the folder of
    its interpreter), and those it must neither hold nor lie in (every folder Python
    imports from: `sys.path`, the user's site folder, the working folder, the package's
    folder, a virtual environment): a module planted there would run in the gateway."""
    package = Path(__file__).resolve().parents[2]
    interpreter = Path(os.path.realpath(sys.executable)).parent
    imported_from = [Path(entry or os.getcwd()) for entry in sys.path]
    imported_from += [package, Path(os.getcwd()), Path(site.getusersitepackages())]
    if sys.prefix != sys.base_prefix:
        imported_from.append(Path(sys.prefix))
    holders = [Path(sys.prefix), Path(sys.exec_prefix), Path(sys.base_prefix), interpreter, *imported_from]

    def folders(paths: list[Path]) -> list[str]:
        return list(dict.fromkeys(str(_real(path)).rstrip("/") + "/" for path in paths))

    return folders(holders), folders(imported_from)


def writable_over_gateway_files(servers: Mapping[str, ServerConfig], files: Iterable[Path]) -> list[str]:
    """Each sandboxed service's writable path that holds one of the gateway's `files`, or
    overlaps its code, as `key path: why`: its processes could replace such a file, or
    plant code the gateway would run (a `.pth` file in its environment)."""
    found: list[str] = []
    holders, imported_from = _gateway_code()
    hidden = [str(_real(path)) for path in files]
    for name, server in servers.items():
        if not server.runs_processes or not server.sandbox.enabled:
            continue
        for index, writable in enumerate(server.sandbox.writable_paths):
            outer = str(_real(Path(_resolved(writable)))).rstrip("/") + "/"
            held = [path for path in hidden if (path + "/").startswith(outer)]
            overlapped = [
                *(folder for folder in holders if folder.startswith(outer)),
                *(folder for folder in imported_from if outer.startswith(folder)),
            ]
            if held:
                found.append(
                    f"mcpServers.{name}.sandbox.writablePaths[{index}]: holds the gateway's own {held[0]}, "
                    "which the service's processes could replace; keep the gateway's files out of it"
                )
            elif overlapped:
                found.append(
                    f"mcpServers.{name}.sandbox.writablePaths[{index}]: overlaps the gateway's own code "
                    f"({overlapped[0].rstrip('/')}), where the service's processes could plant code the "
                    "gateway would run; choose a folder of its own"
                )
    return found

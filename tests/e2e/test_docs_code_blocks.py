"""Every code block of the documentation runs, or says why it cannot.

The pages: README.md, docs/*.md and examples/**/README.md (found by globbing, so a new
page is covered as soon as it lands).

The convention, which this module enforces:

- Every fenced block has a language. A fence without one fails, as does a language this
  module knows neither how to run nor as not runnable.
- Runnable blocks:
  - ```json: a configuration (an object with `proxy` or `version`, or whose `mcpServers`
    entries carry `transportType` or an mcp-front `type`) must load with
    `mcp_front.load_config`, each `{"$env": NAME}` given a placeholder value. Any other
    JSON block (a client's own settings file, a metadata document, an error body) must
    parse as JSON.
  - ```python: executed as a program by the test's Python, `src/` on its path.
  - ```sh: run by `sh -e`. Each command must be `mcp-front` (`validate`, `init`, `keys`,
    `--version`, …), `python`/`python3`, `curl` or `export`; a block with any other
    command must be marked (below). `mcp-front serve` (or the Go form `-config`) is
    started on a free port, checked for readiness on `/health`, then stopped
    (`tests/support/serve_briefly.py`). curl runs with `--fail-with-body --max-time 60`
    from a `.curlrc`: an HTTP error fails the block.
- Not run: the languages `text`, `http`, `mermaid`, `jsonc` (fragments of JSON),
  `console` (output), `toml`, `yaml`, `ini`; and any block whose line before is
  `<!-- not run: <reason> -->` (the reason is required).

Where runnable blocks run:

- Each Python and shell block runs in a fresh directory (outside /tmp, which sandboxed
  stdio children do not share) holding `examples/` (the repository's) and `config.json`:
  the last configuration shown above the block on its page, else
  `examples/quickstart.json`; a block that runs `mcp-front init` starts without one,
  since it writes its own.
- Environment variables that the pages (or `mcp-front init`'s file) reference with `$env`
  are set to placeholders.
- A block that names the demo gateway's address (`localhost:8080` or `127.0.0.1:8080`)
  finds a gateway serving `examples/quickstart.json` there: one gateway, started once
  for the module on a free port, and the block's `:8080` in those addresses is the one
  thing rewritten, to that port (8080 itself may be taken on a shared machine).
- Script files are padded so that a traceback's or the shell's line numbers are the
  page's.

A failure names the page and the line of the block's opening fence.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcp_front.config import ConfigError, load_config
from mcp_front.config.starter import starter_config
from tests.servers.conformance import REPO_ROOT, ServerProcess, running_server
from tests.support.markdown_blocks import (
    CodeBlock,
    UnclosedFenceError,
    code_blocks,
    documentation_pages,
    program_of,
    shell_commands,
)
from tests.support.net import free_port, wait_until_healthy

pytestmark = pytest.mark.e2e

RUNNABLE_LANGUAGES = frozenset({"json", "python", "sh"})
NOT_RUN_LANGUAGES = frozenset({"text", "http", "mermaid", "jsonc", "console", "toml", "yaml", "ini"})
SHELL_PROGRAMS = frozenset({"mcp-front", "python", "python3", "curl", "export"})

DEMO_CONFIG = REPO_ROOT / "examples" / "quickstart.json"
DEMO_ADDRESS = re.compile(r"\b(localhost|127\.0\.0\.1):8080\b")
ENV_REFERENCE = re.compile(r'"\$env"\s*:\s*"([^"]+)"')
# 32 characters: also a valid encryption key, and long enough for any secret's minimum.
PLACEHOLDER = "placeholder-value-for-docs-tests"
# Placeholders only: nothing here connects to them.
STORE_URLS = {
    "redis": "redis://placeholder.invalid:6379/0",
    "postgres": "postgresql://placeholder.invalid/db",
}
BLOCK_TIMEOUT_SECONDS = 180.0


def _all_blocks() -> tuple[list[CodeBlock], list[str]]:
    blocks: list[CodeBlock] = []
    unreadable: list[str] = []
    for page in documentation_pages(REPO_ROOT):
        try:
            blocks += code_blocks(page)
        except UnclosedFenceError as error:
            unreadable.append(str(error))
    return blocks, unreadable


BLOCKS, UNREADABLE_PAGES = _all_blocks()


def _runnable(language: str) -> list[Any]:
    return [
        pytest.param(block, id=block.where(REPO_ROOT))
        for block in BLOCKS
        if block.language == language and block.not_run_reason is None
    ]


# The convention


def test_every_block_is_run_or_says_why_not() -> None:
    problems = list(UNREADABLE_PAGES)
    for block in BLOCKS:
        where = block.where(REPO_ROOT)
        if block.not_run_reason == "":
            problems.append(f"{where}: `<!-- not run: -->` needs a reason")
        elif not block.language:
            problems.append(f"{where}: a fence without a language (```json, ```python, ```sh, ```text, …)")
        elif block.language not in RUNNABLE_LANGUAGES | NOT_RUN_LANGUAGES and block.not_run_reason is None:
            problems.append(
                f"{where}: ```{block.language} is neither run nor known as not runnable: use one of "
                f"{', '.join(sorted(RUNNABLE_LANGUAGES | NOT_RUN_LANGUAGES))}, or put "
                "`<!-- not run: <reason> -->` on the line before"
            )
        elif block.language == "sh" and block.not_run_reason is None and (refusal := _refusal(block)):
            problems.append(refusal)
    assert not problems, "\n".join(problems)


def _refusal(block: CodeBlock) -> str | None:
    """Why a shell block cannot run here, if it runs programs other than the known ones."""
    programs = {program_of(command) for command in shell_commands(block.text)} - {""}  # "" : `NAME=value`
    others = sorted(programs - SHELL_PROGRAMS)
    if not others:
        return None
    return (
        f"{block.where(REPO_ROOT)}: runs {', '.join(others)}, which this test does not run: "
        "put `<!-- not run: <reason> -->` on the line before"
    )


def test_the_pages_are_found_with_their_blocks() -> None:
    """A parser that found nothing would make every other test here pass."""
    pages = {block.path.relative_to(REPO_ROOT).as_posix() for block in BLOCKS}
    assert {"README.md", "docs/configuration.md", "docs/library.md"} <= pages
    readme_json = [b for b in BLOCKS if b.path == REPO_ROOT / "README.md" and b.language == "json"]
    assert len(readme_json) >= 2
    assert all(block.text.lstrip().startswith("{") for block in readme_json)


# ```json


@pytest.mark.parametrize("block", _runnable("json"))
def test_json_block(block: CodeBlock) -> None:
    where = block.where(REPO_ROOT)
    try:
        document = json.loads(block.text)
    except json.JSONDecodeError as error:
        problem = f"{where}: not JSON (line {block.line + error.lineno}: {error.msg}); a fragment is ```jsonc"
    else:
        if not is_configuration(document):
            return
        try:
            load_config(document, environ=placeholders_for(document))
            return
        except ConfigError as error:
            problem = f"{where}: the configuration does not load:\n{error}"
    pytest.fail(problem)


def is_configuration(document: object) -> bool:
    """An mcp-front configuration, as opposed to some other JSON shown on a page (a client's
    settings file also has `mcpServers`, but never `transportType` in them)."""
    if not isinstance(document, dict):
        return False
    if "proxy" in document or "version" in document:
        return True
    servers = document.get("mcpServers")
    return isinstance(servers, dict) and any(
        isinstance(server, dict)
        and ("transportType" in server or server.get("type") in ("aggregate", "direct"))
        for server in servers.values()
    )


def placeholders_for(document: object) -> dict[str, str]:
    """A value for each `{"$env": NAME}` of `document` that fits where it stands: a URL of
    the store's kind for `storage.url`, a URL for other `…Url`/`…Uri` keys, else 32 characters."""
    found: dict[str, str] = {}

    def visit(value: object, key: str, parent: dict[str, Any]) -> None:
        if isinstance(value, dict):
            name = value.get("$env")
            if isinstance(name, str) and len(value) == 1:
                found.setdefault(name, _placeholder(key, parent))
            for child_key, child in value.items():
                visit(child, child_key, value)
        elif isinstance(value, list):
            for child in value:
                visit(child, key, parent)

    visit(document, "", {})
    return found


def _placeholder(key: str, parent: dict[str, Any]) -> str:
    if key == "url" and parent.get("kind") in STORE_URLS:
        return STORE_URLS[parent["kind"]]
    if key.lower().endswith(("url", "uri")):
        return "https://placeholder.example.com/"
    return PLACEHOLDER


def _page_placeholders() -> dict[str, str]:
    """Every variable the pages reference, for the programs and commands that run; where a
    reference stands in a whole JSON document decides its value, as in `placeholders_for`."""
    names = (name for block in BLOCKS for name in ENV_REFERENCE.findall(block.text))
    found = dict.fromkeys(names, PLACEHOLDER) | placeholders_for(starter_config())  # `mcp-front init`'s
    for block in BLOCKS:
        with contextlib.suppress(json.JSONDecodeError):
            found |= placeholders_for(json.loads(block.text))
    return found


# ```python and ```sh


@pytest.mark.parametrize("block", _runnable("python"))
def test_python_block(block: CodeBlock, request: pytest.FixtureRequest, work_directory: Path) -> None:
    run = _prepare(block, request, work_directory)
    script = run.write_script(".py")
    _expect_success(block, [sys.executable, str(script)], run)


@pytest.mark.parametrize("block", _runnable("sh"))
def test_sh_block(block: CodeBlock, request: pytest.FixtureRequest, work_directory: Path) -> None:
    refusal = _refusal(block)
    if refusal is not None:
        pytest.fail(refusal)
    run = _prepare(block, request, work_directory)
    script = run.write_script(".sh")
    _expect_success(block, ["sh", "-e", str(script)], run)


@dataclass(frozen=True)
class BlockRun:
    """A block's text, as it will run, and the directory and environment it runs in."""

    block: CodeBlock
    text: str
    directory: Path
    env: dict[str, str]

    def write_script(self, suffix: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9]+", "_", self.block.path.relative_to(REPO_ROOT).as_posix())
        script = self.directory / f"{name}_line{self.block.line}{suffix}"
        # Line N of the script is line N of the page: the opening fence is line `block.line`.
        script.write_text("\n" * self.block.line + self.text)
        return script


def _prepare(block: CodeBlock, request: pytest.FixtureRequest, directory: Path) -> BlockRun:
    text = block.text
    if DEMO_ADDRESS.search(text):
        gateway: ServerProcess = request.getfixturevalue("demo_gateway")
        text = DEMO_ADDRESS.sub(rf"\1:{gateway.port}", text)
    work = directory / "work"
    work.mkdir()
    (work / "examples").symlink_to(REPO_ROOT / "examples", target_is_directory=True)
    runs_init = block.language == "sh" and any(
        command[:2] == ["mcp-front", "init"] for command in shell_commands(text)
    )
    if not runs_init:
        (work / "config.json").write_text(_config_above(block))
    shell_bin: Path = request.getfixturevalue("shell_bin")
    return BlockRun(block, text, work, _environment(shell_bin, directory))


def _config_above(block: CodeBlock) -> str:
    """The last configuration shown on the block's page above it, else the quickstart's."""
    shown = DEMO_CONFIG.read_text()
    for earlier in BLOCKS:
        if earlier.path != block.path or earlier.line >= block.line:
            continue
        if earlier.language == "json" and earlier.not_run_reason is None:
            try:
                if is_configuration(json.loads(earlier.text)):
                    shown = earlier.text
            except json.JSONDecodeError:
                pass  # reported by its own test
    return shown


def _environment(shell_bin: Path, directory: Path) -> dict[str, str]:
    curl_home = directory / "curl-home"
    curl_home.mkdir()
    (curl_home / ".curlrc").write_text("fail-with-body\nmax-time = 60\nsilent\nshow-error\n")
    placeholders = _page_placeholders()
    python_path = [str(REPO_ROOT / "src"), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        **placeholders,
        "PATH": os.pathsep.join([str(shell_bin), str(Path(sys.executable).parent), os.environ["PATH"]]),
        "PYTHONPATH": os.pathsep.join(part for part in python_path if part),
        "CURL_HOME": str(curl_home),
    }


def _expect_success(block: CodeBlock, command: list[str], run: BlockRun) -> None:
    try:
        result = subprocess.run(
            command,
            cwd=run.directory,
            env=run.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"{block.where(REPO_ROOT)}: still running after {timeout.timeout:.0f} s")
    assert result.returncode == 0, (
        f"{block.where(REPO_ROOT)}: exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )


# Fixtures


@pytest.fixture
def work_directory(tmp_path: Path) -> Iterator[Path]:
    """A fresh directory, outside /tmp where one exists: a sandboxed stdio child gets a /tmp
    of its own, in which a gateway started from a folder under /tmp would not find
    `examples/`."""
    parent = Path("/var/tmp")
    if not (parent.is_dir() and os.access(parent, os.W_OK)):
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(prefix="mcp-front-docs-", dir=parent))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def shell_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose `mcp-front` is the real CLI, except that `serve` returns once ready."""
    directory = tmp_path_factory.mktemp("docs-bin")
    shim = directory / "mcp-front"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tests.support.serve_briefly "$@"\n')
    shim.chmod(0o755)
    return directory


@pytest.fixture(scope="module")
def demo_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`mcp-front serve --config examples/quickstart.json`, on a free port, for every block
    that talks to the demo gateway."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mcp_front.cli",
        "serve",
        "--config",
        str(DEMO_CONFIG),
        "--port",
        str(port),
    ]
    # From the repository root: its stdio children run sandboxed with a /tmp of their own,
    # where a working directory under /tmp would not exist.
    with running_server(
        command,
        port=port,
        url=f"http://127.0.0.1:{port}",
        cwd=REPO_ROOT,
        log_path=tmp_path_factory.mktemp("demo-gateway") / "gateway.log",
        startup_timeout=90,
    ) as server:
        wait_until_healthy(f"{server.url}/health", timeout=60)
        yield server

"""docs/migrating-from-go.md shows what `mcp-front validate` says today about each of the Go
mcp-front's published example configurations (copies in tests/data/go-mcp-front/).

The real console script runs as a subprocess, in the folder of the copies, with the
placeholder environment that the page itself lists; its output is compared with the page's
`$ mcp-front validate --config FILE` blocks, so the page fails here when it goes out of date.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "migrating-from-go.md"
EXAMPLES = ROOT / "tests" / "data" / "go-mcp-front"
CONSOLE_SCRIPT = Path(sys.executable).with_name("mcp-front")
COMMAND_TIMEOUT = 120.0

PROMPT = "$ mcp-front validate --config "
TEXT_BLOCK = re.compile(r"^```text\n(.*?)^```", re.MULTILINE | re.DOTALL)
ENVIRONMENT_BLOCK = re.compile(r"^<!-- validate-environment -->\n```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXPORT = re.compile(r"^export ([A-Z][A-Z0-9_]*)=(\S+)$")
ENV_REFERENCE = re.compile(r'\{\s*"\$env"\s*:\s*"([^"]+)"\s*\}')
# Whether bubblewrap works, and who runs the gateway, are facts of the machine, not of the
# configuration: such warnings are left out of the comparison (the page is written where
# bubblewrap works, by a user other than root).
MACHINE_DEPENDENT = ("cannot be sandboxed", "the gateway runs as root")
# What a process needs to start; nothing else of this environment reaches validate.
PASSED_THROUGH = ("PATH", "HOME", "PYTHONPATH", "LANG", "SYSTEMROOT")


def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def stored_examples() -> list[str]:
    return sorted(path.relative_to(EXAMPLES).as_posix() for path in EXAMPLES.rglob("*.json"))


def shown_outputs() -> dict[str, str]:
    shown: dict[str, str] = {}
    for block in TEXT_BLOCK.findall(page()):
        first, _, rest = block.partition("\n")
        if first.startswith(PROMPT):
            name = first.removeprefix(PROMPT).strip()
            assert name not in shown, f"{name} is shown twice"
            shown[name] = rest
    return shown


def placeholders() -> dict[str, str]:
    [block] = ENVIRONMENT_BLOCK.findall(page())
    values: dict[str, str] = {}
    for line in block.splitlines():
        if line and not line.startswith("#"):
            match = EXPORT.match(line)
            assert match, f"not an `export NAME=value` line: {line!r}"
            values[match[1]] = match[2]
    return values


def validate(name: str) -> tuple[int, str]:
    environment = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "validate", "--config", name],
        cwd=EXAMPLES,
        env={**environment, **placeholders()},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    lines = [
        line for line in result.stdout.splitlines() if not any(fact in line for fact in MACHINE_DEPENDENT)
    ]
    return result.returncode, "".join(f"{line}\n" for line in lines)


def test_the_page_shows_every_stored_example_and_nothing_else() -> None:
    assert len(stored_examples()) >= 20
    assert sorted(shown_outputs()) == stored_examples()


def test_the_placeholders_cover_every_variable_the_examples_read() -> None:
    referenced = {
        variable
        for name in stored_examples()
        for variable in ENV_REFERENCE.findall((EXAMPLES / name).read_text(encoding="utf-8"))
    }
    assert referenced
    assert sorted(referenced) == sorted(placeholders())


@pytest.mark.parametrize("name", stored_examples())
def test_the_page_shows_what_validate_says_today(name: str) -> None:
    status, output = validate(name)
    assert output == shown_outputs()[name], (
        f"docs/migrating-from-go.md is out of date for {name}; validate now says:\n{output}"
    )
    verdict = output.splitlines()[-1] if status == 0 else output.splitlines()[0]
    if status == 0:
        assert verdict.startswith(f"{name}: valid ("), output
    else:
        assert status == 1, output
        assert verdict.startswith(f"invalid configuration in {name} "), output


def test_a_refusal_names_the_key_at_fault_and_exits_non_zero() -> None:
    status, output = validate("config-oauth-firestore.example.json")
    assert status == 1
    assert "proxy.auth.storage: Firestore storage is not supported" in output


def test_no_secret_placeholder_is_ever_printed() -> None:
    secrets = [
        value
        for variable, value in placeholders().items()
        if variable.endswith(("SECRET", "KEY", "TOKEN", "PASSWORD", "_URL", "JSON"))
    ]
    assert len(secrets) >= 8
    printed = "".join(validate(name)[1] for name in stored_examples())
    assert [value for value in secrets if value in printed] == []

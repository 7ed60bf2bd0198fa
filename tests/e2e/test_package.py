"""The package as users get it: an sdist and a wheel built as `python -m build` builds them
(the wheel from the sdist), the wheel installed in a fresh virtual environment, and its
`mcp-front` command run from there."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from mcp_front import __version__
from tests.servers.conformance import REPO_ROOT

pytestmark = pytest.mark.e2e

BUILD_TIMEOUT = 600
INSTALL_TIMEOUT = 900


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT,
    )
    return out


def only(folder: Path, pattern: str) -> Path:
    [found] = folder.glob(pattern)
    return found


def test_the_sdist_holds_the_sources_and_nothing_private(dist: Path) -> None:
    with tarfile.open(only(dist, "mcp_front-*.tar.gz")) as sdist:
        names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]
    assert "src/mcp_front/__init__.py" in names
    assert {"README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml"} <= set(names)
    for private in ("tests/", "bench/", ".venv", "__pycache__", ".git/", "node_modules"):
        assert not [name for name in names if private in name], private


def test_the_wheel_is_typed_carries_its_pages_and_describes_itself(dist: Path) -> None:
    with zipfile.ZipFile(only(dist, "mcp_front-*.whl")) as wheel:
        names = set(wheel.namelist())
        metadata_name = next(name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = email.message_from_string(wheel.read(metadata_name).decode())
    assert "mcp_front/py.typed" in names
    assert "mcp_front/web/templates/consent.html" in names
    assert not [name for name in names if "__pycache__" in name or name.startswith("tests/")]
    assert metadata["Version"] == __version__
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == (REPO_ROOT / "README.md").read_text().strip()
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    assert metadata["License-Expression"] == "MIT"


def test_the_wheel_installs_in_a_fresh_environment_and_runs(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=INSTALL_TIMEOUT)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(only(dist, "mcp_front-*.whl"))],
        check=True,
        capture_output=True,
        timeout=INSTALL_TIMEOUT,
    )

    def outside_the_checkout(*argv: str) -> str:
        """What `argv` prints, run away from the checkout, with nothing of it on the path."""
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        done = subprocess.run(
            argv, capture_output=True, text=True, check=True, cwd=tmp_path, env=env, timeout=120
        )
        return done.stdout.strip()

    assert outside_the_checkout(str(venv / "bin" / "mcp-front"), "--version") == f"mcp-front {__version__}"
    where = outside_the_checkout(
        str(python), "-c", "import mcp_front, pathlib; print(pathlib.Path(mcp_front.__file__).parent)"
    )
    package = Path(where)
    assert package.is_relative_to(venv)
    assert (package / "py.typed").exists()

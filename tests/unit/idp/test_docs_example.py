"""The custom-provider example in docs/identity-providers.md runs as printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "identity-providers.md"


def test_the_custom_provider_example_runs() -> None:
    example = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)[-1]
    completed = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[-1] == "ada@example.com frozenset({'staff'})"

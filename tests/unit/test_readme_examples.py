"""The README's configuration examples are valid configurations."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mcp_front.config import load_config

README = Path(__file__).resolve().parents[2] / "README.md"
JSON_BLOCK = re.compile(r"^```json\n(.*?)^```", re.MULTILINE | re.DOTALL)
ENVIRON = {"GOOGLE_CLIENT_ID": "id", "GOOGLE_CLIENT_SECRET": "secret", "ENCRYPTION_KEY": "k" * 32}


def test_every_json_block_of_the_readme_loads() -> None:
    blocks = JSON_BLOCK.findall(README.read_text())
    assert len(blocks) >= 2
    configs = [load_config(json.loads(block), environ=ENVIRON) for block in blocks]
    assert any(config.proxy.auth is not None for config in configs)
    assert any("filesystem" in config.mcp_servers for config in configs)

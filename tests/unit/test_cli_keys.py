"""`mcp-front keys`: show and rotate the access-token signing keys kept in the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_front.cli import main

CONFIG = {
    "proxy": {
        "baseURL": "http://127.0.0.1:9",
        "auth": {
            "kind": "oauth",
            "issuer": "http://127.0.0.1:9",
            "idp": {
                "provider": "oidc",
                "clientId": "x",
                "clientSecret": "y",
                "redirectUri": "http://127.0.0.1:9/oauth/callback",
                "discoveryUrl": "http://127.0.0.1:1/.well-known/openid-configuration",
            },
            "allowedDomains": ["example.com"],
            "jwtSecret": "j" * 40,
            "encryptionKey": "k" * 32,
        },
    },
    "mcpServers": {},
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(list(argv))
    return code, capsys.readouterr().out.splitlines()


def test_show_then_rotate_keeps_the_old_key_for_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    code, shown = run(capsys, "keys", "show", "--config", "config.json")
    assert code == 0
    assert len(shown) == 1
    first = shown[0].removeprefix("signing: ").removesuffix(" (ES256)")
    code, rotated = run(capsys, "keys", "rotate", "--config", "config.json")
    assert code == 0
    assert rotated[1] == f"verifying only: {first} (ES256)"
    assert rotated[0] != shown[0]
    assert run(capsys, "keys", "show", "--config", "config.json")[1] == rotated
    assert (tmp_path / "mcp-front.sqlite3").stat().st_mode & 0o777 == 0o600


def test_keys_need_an_auth_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"mcpServers": {}}))
    assert main(["keys", "show", "--config", str(path)]) == 1
    assert "no proxy.auth block" in capsys.readouterr().err

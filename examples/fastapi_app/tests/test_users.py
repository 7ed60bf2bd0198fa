"""`users.py`: the accounts file its command writes, and the password checks made against it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from users import UserDirectory, hash_password, verify_password

APP_DIR = Path(__file__).resolve().parent.parent


def add(file: Path, email: str, password: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(APP_DIR / "users.py"),
            "add",
            email,
            "--file",
            str(file),
            "--password-stdin",
            *extra,
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_add_writes_an_owner_only_file_with_a_salted_hash(tmp_path: Path) -> None:
    file = tmp_path / "users.json"
    added = add(file, "ada@example.com", "a long enough password", "--name", "Ada", "--group", "ops")
    assert added.returncode == 0, added.stderr
    assert file.stat().st_mode & 0o777 == 0o600
    [entry] = json.loads(file.read_text())["users"]
    assert entry["password"].startswith("scrypt$")
    assert "a long enough password" not in file.read_text()
    assert (entry["name"], entry["groups"]) == ("Ada", ["ops"])
    users = UserDirectory.load(file)
    assert users.authenticate("ada@example.com", "a long enough password") is not None
    assert users.authenticate("ada@example.com", "a long enough passwore") is None


def test_adding_again_changes_the_password_and_keeps_the_subject(tmp_path: Path) -> None:
    file = tmp_path / "users.json"
    assert add(file, "ada@example.com", "the first password").returncode == 0
    subject = json.loads(file.read_text())["users"][0]["subject"]
    assert add(file, "ADA@example.com", "the second password").returncode == 0
    [entry] = json.loads(file.read_text())["users"]
    assert entry["subject"] == subject
    users = UserDirectory.load(file)
    assert users.authenticate("ada@example.com", "the first password") is None
    assert users.authenticate("ada@example.com", "the second password") is not None


def test_a_short_password_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    file = tmp_path / "users.json"
    refused = add(file, "ada@example.com", "short")
    assert refused.returncode == 1
    assert "at least 12 characters" in refused.stderr
    assert not file.exists()


def test_two_hashes_of_one_password_differ_and_a_malformed_hash_never_matches() -> None:
    first, second = hash_password("same password"), hash_password("same password")
    assert first != second
    assert verify_password("same password", first)
    assert verify_password("same password", second)
    assert not verify_password("same password", "scrypt$1$1$1$AA$AA")
    assert not verify_password("same password", "plain$same password")

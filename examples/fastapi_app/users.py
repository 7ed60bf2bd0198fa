"""The host application's own users: a JSON file of accounts with scrypt password hashes.

    python users.py add ada@example.com --name "Ada Lovelace" --group engineering

asks for the password twice (or reads one line from standard input with
`--password-stdin`) and writes `users.json` (or `--file`), readable by its owner only.
Running it again for the same email sets a new password and keeps the account's subject.

A real application keeps its accounts wherever it already does (its database, its ORM);
`HostSignIn` only needs something with `authenticate(email, password)` and `get(subject)`.
"""

from __future__ import annotations

import argparse
import base64
import functools
import getpass
import hashlib
import hmac
import json
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 3  # with n=2**15, r=8: one of OWASP's recommended scrypt settings, 32 MiB per hash
SCRYPT_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD_LENGTH = 12


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """`scrypt$<n>$<r>$<p>$<salt>$<hash>`: the parameters travel with the hash, so they can grow later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), maxmem=SCRYPT_MAXMEM, dklen=32
        )
    except ValueError:  # a malformed hash, or parameters scrypt refuses
        return False
    return hmac.compare_digest(digest, _unb64(expected))


@functools.cache
def _unknown_user_hash() -> str:
    """Checked when the email is unknown, so that a wrong email takes as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    subject: str
    """Stable and never reused; emails can change hands, subjects cannot."""
    email: str
    password_hash: str = field(repr=False)
    name: str | None = None
    groups: frozenset[str] = frozenset()


class UserDirectory:
    """The accounts of `users.json`, read once at start."""

    def __init__(self, users: list[User]) -> None:
        _unknown_user_hash()  # made now, so that the first unknown email is not slower than the rest
        self._by_email = {user.email.lower(): user for user in users}
        self._by_subject = {user.subject: user for user in users}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> UserDirectory:
        document = json.loads(Path(path).read_text())
        return cls(
            [
                User(
                    subject=entry["subject"],
                    email=entry["email"],
                    password_hash=entry["password"],
                    name=entry.get("name"),
                    groups=frozenset(entry.get("groups", [])),
                )
                for entry in document["users"]
            ]
        )

    def __len__(self) -> int:
        return len(self._by_subject)

    def __contains__(self, email: str) -> bool:
        return email.strip().lower() in self._by_email

    def authenticate(self, email: str, password: str) -> User | None:
        """The user with this email and password, or None; as slow for an unknown email as for a known one.

        Blocking (scrypt takes tens of milliseconds): call it from a worker thread.
        """
        user = self._by_email.get(email.strip().lower())
        matches = verify_password(password, user.password_hash if user else _unknown_user_hash())
        return user if user is not None and matches else None

    def get(self, subject: str) -> User | None:
        return self._by_subject.get(subject)


def add_user(
    path: Path, email: str, password: str, *, name: str | None, groups: list[str]
) -> dict[str, object]:
    """Add the account to the file, or give an existing one this password, name and groups."""
    document = json.loads(path.read_text()) if path.exists() else {"users": []}
    users: list[dict[str, object]] = document["users"]
    entry = next((user for user in users if str(user["email"]).lower() == email.lower()), None)
    if entry is None:
        entry = {"subject": f"user-{secrets.token_hex(8)}", "email": email}
        users.append(entry)
    entry.update({"password": hash_password(password), "name": name, "groups": sorted(groups)})
    # Written under a new name, then renamed: the file is never half-written or briefly readable by others.
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(document, file, indent=2)
        file.write("\n")
    draft.replace(path)
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Manage the host application's users.")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a user, or set an existing user's password")
    add.add_argument("email")
    add.add_argument("--name")
    add.add_argument("--group", action="append", default=[], help="a group the user belongs to (repeatable)")
    add.add_argument("--file", type=Path, default=Path("users.json"))
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    arguments = parser.parse_args(argv)

    if arguments.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {arguments.email}: ")
        if getpass.getpass("Again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 1
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"a password needs at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr)
        return 1
    entry = add_user(arguments.file, arguments.email, password, name=arguments.name, groups=arguments.group)
    print(f"{arguments.email} ({entry['subject']}) saved in {arguments.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

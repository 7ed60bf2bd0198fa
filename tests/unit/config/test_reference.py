"""docs/config-reference.md is generated from the configuration models, stays in step with
them, and documents every key they accept."""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

import mcp_front
from mcp_front.config import load_config
from mcp_front.config.compatibility import inert_keys
from mcp_front.config.durations import format_duration
from mcp_front.config.models import GatewayConfig, RateLimitsConfig, SessionsConfig, TransportType
from mcp_front.config.models._base import ConfigModel
from mcp_front.config.reference import (
    REGENERATE_COMMAND,
    MissingDescriptionError,
    config_reference,
    sections,
)

REPOSITORY = Path(__file__).resolve().parents[3]
REFERENCE = REPOSITORY / "docs" / "config-reference.md"
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def rows(markdown: str) -> dict[str, tuple[str, str, str]]:
    """Each table row of the reference by its key: (type, default, description)."""
    found: dict[str, tuple[str, str, str]] = {}
    for line in markdown.splitlines():
        if line.startswith("| `"):
            key, kind, default, description = (cell.strip() for cell in _CELL_SEPARATOR.split(line)[1:-1])
            found.setdefault(key.strip("`"), (kind, default, description))
    return found


def reachable_models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """Every model a configuration can contain, found from the type annotations alone."""
    seen: set[type[BaseModel]] = set()
    pending = [model]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        yield current
        for info in current.model_fields.values():
            pending.extend(_models_in(info.annotation))


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        if issubclass(annotation, BaseModel):
            yield annotation
        return
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


def test_the_committed_reference_is_what_the_models_say() -> None:
    committed = REFERENCE.read_text(encoding="utf-8")
    generated = config_reference()
    if committed != generated:
        diff = "\n".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(),
                    generated.splitlines(),
                    "docs/config-reference.md (committed)",
                    "generated from the models",
                    lineterm="",
                )
            )[:60]
        )
        pytest.fail(
            f"docs/config-reference.md is out of date; regenerate it with\n    {REGENERATE_COMMAND}\n{diff}",
            pytrace=False,
        )


def test_the_command_prints_the_reference() -> None:
    source_root = str(Path(mcp_front.__file__).resolve().parents[1])
    environment = os.environ | {
        "PYTHONPATH": os.pathsep.join([source_root, os.environ.get("PYTHONPATH", "")])
    }
    finished = subprocess.run(
        [sys.executable, "-m", "mcp_front.config.reference"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=environment,
        cwd=REPOSITORY,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == config_reference()


def test_every_key_of_every_model_has_a_described_row() -> None:
    markdown = config_reference()
    documented = {
        (entry.model, entry.field_name): entry for section in sections() for entry in section.entries
    }
    table = rows(markdown)
    models = list(reachable_models(GatewayConfig))
    assert len(models) > 20  # the walk above did find the nested models
    for model in models:
        for name, info in model.model_fields.items():
            entry = documented.get((model, name))
            assert entry is not None, f"{model.__name__}.{name} is missing from the reference"
            assert entry.description.strip(), f"{entry.path} has no description"
            assert entry.path.rsplit(".", 1)[-1] == (info.alias or name)
            assert entry.path in table, f"{entry.path} has no row"


def test_a_key_without_a_description_is_refused() -> None:
    class Block(ConfigModel):
        """A block of a made-up configuration."""

        described: int = 1
        """Says what it is."""
        undescribed_key: str = "x"

    class Root(ConfigModel):
        """A made-up configuration."""

        block: Block = Field(default_factory=Block)
        """The block."""

    with pytest.raises(MissingDescriptionError) as raised:
        sections(Root)
    named = str(raised.value).rsplit(": ", 1)[-1].split(", ")
    assert named == ["block.undescribedKey"]


def test_rows_give_type_default_limits_and_allowed_values() -> None:
    table = rows(config_reference())

    assert table["proxy.auth.idp.clientId"][:2] == ("string, not empty", "required")
    kind, _, _ = table["mcpServers.<name>.transportType"]
    assert all(f'`"{transport}"`' in kind for transport in typing.get_args(TransportType))
    assert table["proxy.sessions.timeout"][:2] == (
        "duration, longer than zero",
        f'`"{format_duration(SessionsConfig().timeout)}"`',
    )
    assert table["proxy.sessions.maxPerUser"][:2] == (
        "integer, at least 1",
        f"`{SessionsConfig().max_per_user}`",
    )
    rule = RateLimitsConfig().authorize
    assert rule is not None
    assert table["proxy.rateLimits.authorize"][1] == f'`{{"requests": {rule.requests}, "per": "1m"}}`'
    assert table["proxy.rateLimits.authorize"][0].endswith(", or `null`")
    assert table["proxy.auth.encryptionKey"][0] == "[secret](#secrets)"
    assert table["proxy.auth.storage.prefix"][0].endswith("matching `^[A-Za-z0-9:._-]+$`")
    assert "Also read as `name`" in table["mcpServers.<name>.serviceAuths[].user"][2]
    assert table["proxy.baseURL"][1] == '`"http://localhost:8080"`'
    assert (
        table["mcpServers.<name>.serviceAuths[].tokens"][0]
        == "list of [secret](#secrets) (each not empty), not empty"
    )


def test_each_kind_of_server_provider_storage_and_credential_has_its_own_section() -> None:
    by_title = {
        section.title: {entry.path.rsplit(".", 1)[-1] for entry in section.entries} for section in sections()
    }
    server = "`mcpServers.<name>`"
    assert by_title[f'{server}: `"transportType": "stdio"`'] == {
        "command",
        "args",
        "env",
        "cwd",
        "startupTimeout",
        "sandbox",
    }
    assert by_title[f'{server}: `"transportType": "sse"`'] == {"url", "headers"}
    assert by_title[f'{server}: `"transportType": "streamable-http"`'] == {"url", "headers"}
    assert by_title[f'{server}: `"transportType": "inline"`'] == {"inline", "sandbox"}
    assert by_title[f'{server}: `"type": "aggregate"`'] == {"servers", "delimiter", "discovery"}
    assert by_title[f"{server}: every server"] >= {"type", "transportType", "serviceAuths", "policy"}
    assert by_title['`proxy.auth.idp`: `"provider": "azure"`'] >= {"tenantId"}
    assert by_title['`proxy.auth.idp`: `"provider": "github"`'] == {"allowedOrgs"}
    assert "discoveryUrl" in by_title['`proxy.auth.idp`: `"provider": "oidc"`']
    for kind in ("memory", "sqlite", "redis", "postgres"):
        assert "kind" in by_title[f'`proxy.auth.storage`: `"kind": "{kind}"`']
    assert "url" in by_title['`proxy.auth.storage`: `"kind": "redis"`']
    for kind in ("bearer", "basic"):
        assert f'`mcpServers.<name>.serviceAuths[]`: `"type": "{kind}"`' in by_title
    for kind in ("manual", "oauth", "mcp-oauth"):
        assert f'`mcpServers.<name>.userAuthentication`: `"type": "{kind}"`' in by_title


def test_keys_the_gateway_ignores_are_marked_with_what_validate_says() -> None:
    config = load_config(
        {
            "proxy": {
                "admin": {"enabled": True, "adminEmails": ["admin@example.com"]},
                "auth": {
                    "kind": "oauth",
                    "issuer": "http://localhost:8080",
                    "googleClientId": "id",
                    "googleClientSecret": "secret",
                    "googleRedirectUri": "http://localhost:8080/oauth/callback",
                    "allowedDomains": ["example.com"],
                    "encryptionKey": "e" * 32,
                    "jwtSecret": "j" * 40,
                    "gcpProject": "my-project",
                    "firestoreDatabase": "(default)",
                    "firestoreCollection": "tokens",
                },
            },
            "mcpServers": {
                "notes": {
                    "transportType": "sse",
                    "url": "http://localhost:3000/sse",
                    "options": {"logEnabled": True, "authTokens": ["old-token"]},
                }
            },
        },
        environ={},
    )
    table = rows(config_reference())
    issues = inert_keys(config)
    assert len(issues) == 7
    for issue in issues:
        assert issue.path is not None
        path = issue.path.replace("mcpServers.notes.", "mcpServers.<name>.")
        description = table[path][2]
        assert f"**Ignored**: {issue.message}" in description, path


def test_links_to_the_reference_and_within_it_lead_to_a_section() -> None:
    markdown = REFERENCE.read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', markdown))
    internal = set(re.findall(r"\]\(#([^)]+)\)", markdown))
    assert internal <= anchors, internal - anchors
    assert {section.anchor for section in sections()} <= internal  # the contents list every section
    linked_from_docs = {
        (document.name, anchor)
        for document in [REPOSITORY / "README.md", *(REPOSITORY / "docs").glob("*.md")]
        for anchor in re.findall(r"config-reference\.md#([^)\s]+)\)", document.read_text(encoding="utf-8"))
    }
    assert linked_from_docs, "docs/configuration.md links into the reference"
    assert {anchor for _, anchor in linked_from_docs} <= anchors, linked_from_docs

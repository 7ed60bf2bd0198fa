"""Read a configuration file (or mapping) into a `GatewayConfig`, reporting every problem."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mcp_front.config.diagnostics import describe_validation_error
from mcp_front.config.errors import ConfigError, ConfigIssue
from mcp_front.config.models import GatewayConfig
from mcp_front.config.references import resolve_references


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any], *, environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Load and validate a configuration.

    `source` is the path of a JSON file, or the already-parsed document. References are
    resolved against `environ` (the process environment by default) and, for `$file`,
    against the folder of the file (the working directory for a mapping).

    Raises `ConfigError` listing every problem found: unreadable or malformed JSON,
    references that cannot be resolved, and values the models reject, all in one report.
    """
    environ = os.environ if environ is None else environ
    if isinstance(source, Mapping):
        return _validate(source, environ=environ, base_dir=Path.cwd(), origin=None)
    path = Path(source)
    document = _read_document(path)
    return _validate(document, environ=environ, base_dir=path.absolute().parent, origin=str(path))


def _read_document(path: Path) -> Mapping[str, Any]:
    def fail(message: str, fix: str | None = None) -> ConfigError:
        return ConfigError([ConfigIssue("", message, fix)], source=str(path))

    try:
        # utf-8-sig: some Windows editors start files with a byte-order mark.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise fail(f"file {path} does not exist", "create one with: mcp-front init") from None
    except UnicodeDecodeError:
        raise fail("the file is not UTF-8 text") from None
    except OSError as error:
        raise fail(f"cannot read {path}: {error.strerror or type(error).__name__}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise fail(f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    if not isinstance(document, dict):
        raise fail(
            "the configuration must be a JSON object", 'start from {"proxy": {...}, "mcpServers": {...}}'
        )
    return document


def _validate(
    document: Mapping[str, Any], *, environ: Mapping[str, str], base_dir: Path, origin: str | None
) -> GatewayConfig:
    resolved = resolve_references(document, environ=environ, base_dir=base_dir)
    try:
        config = GatewayConfig.model_validate(resolved.document)
    except ValidationError as error:
        model_issues = describe_validation_error(
            error,
            model=GatewayConfig,
            document=resolved.document,
            secret_paths=resolved.secret_paths,
            unresolved_paths=resolved.unresolved_paths,
        )
        raise ConfigError([*resolved.issues, *model_issues], source=origin) from None
    if resolved.issues:
        raise ConfigError(resolved.issues, source=origin)
    own_file = [Path(origin).absolute()] if origin is not None else []
    return config.read_from([*own_file, *sorted(resolved.files)])

"""The configuration reference: every key of the file, read from the models themselves.

`python -m mcp_front.config.reference > docs/config-reference.md` writes it;
`config_reference()` returns the same Markdown. Each key's description is the attribute
docstring under its field in `mcp_front.config.models`; a field without one is an error
here, so a key cannot be added without saying what it does.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import re
import sys
import textwrap
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from mcp_front.config.compatibility import inert_keys
from mcp_front.config.key_types import Anchors, default_text, full_annotation, json_text, type_text
from mcp_front.config.models import GatewayConfig, IdentityProviderConfig, ServerConfig, ServicePolicy
from mcp_front.config.models._base import json_key
from mcp_front.config.models.auth import _LEGACY_GOOGLE_KEYS
from mcp_front.config.models.servers import _AGGREGATE_FIELDS, _DIRECT_FIELDS, _TRANSPORT_FIELDS
from mcp_front.errors import MCPFrontError

__all__ = [
    "REGENERATE_COMMAND",
    "KeyEntry",
    "MissingDescriptionError",
    "Section",
    "config_reference",
    "sections",
]

REGENERATE_COMMAND: Final = "python -m mcp_front.config.reference > docs/config-reference.md"

# What stands for a key of a free-form object in a key path.
_MAP_KEYS: Final[dict[tuple[type[BaseModel], str], str]] = {
    (GatewayConfig, "mcp_servers"): "<name>",
    (ServicePolicy, "tools"): "<tool>",
}


class MissingDescriptionError(MCPFrontError):
    """A key of the configuration has no attribute docstring to describe it."""


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key of one object: a row of the reference."""

    path: str
    """The key path in the file, `proxy.auth.idp.clientId`; for an object found at
    several places, just the key."""
    model: type[BaseModel]
    field_name: str
    type_text: str
    default_text: str
    description: str


@dataclass(frozen=True, slots=True)
class Section:
    """One object of the file (or one kind of it), with its keys."""

    anchor: str
    title: str
    paths: tuple[str, ...]
    intro: str
    entries: tuple[KeyEntry, ...]


@dataclass(frozen=True, slots=True)
class _Split:
    """Which keys apply to which kind of one model, told apart by a key's value."""

    common_title: str
    kinds: tuple[tuple[str, str, frozenset[str]], ...]
    """(anchor suffix, title, field names) of each kind."""


def _server_split() -> _Split:
    direct_only = _DIRECT_FIELDS - frozenset().union(*_TRANSPORT_FIELDS.values())
    kinds = [("type-direct", 'every direct server (`"type": "direct"`)', direct_only)]
    kinds += [
        (f"transporttype-{transport}", f'`"transportType": "{transport}"`', fields)
        for transport, fields in _TRANSPORT_FIELDS.items()
    ]
    kinds.append(("type-aggregate", '`"type": "aggregate"`', _AGGREGATE_FIELDS))
    return _Split("every server", tuple(kinds))


# The keys that only some identity providers read, as configuration.md documents them
# (`mcp_front.idp.factory` builds the providers); every provider reads the others.
_IDP_SPLIT: Final = _Split(
    "every provider",
    (
        ("provider-google", '`"provider": "google"`', frozenset({"hosted_domain"})),
        ("provider-azure", '`"provider": "azure"`', frozenset({"tenant_id", "groups_claim"})),
        ("provider-github", '`"provider": "github"`', frozenset({"allowed_orgs"})),
        (
            "provider-oidc",
            '`"provider": "oidc"`',
            frozenset({"discovery_url", "issuer", "jwks_url", "groups_claim"}),
        ),
    ),
)
_SPLITS: Final[dict[type[BaseModel], _Split]] = {
    ServerConfig: _server_split(),
    IdentityProviderConfig: _IDP_SPLIT,
}


@dataclass
class _Found:
    """A model reached while walking the configuration, and where."""

    model: type[BaseModel]
    paths: list[str] = field(default_factory=list)
    discriminator: str | None = None


def sections(root: type[BaseModel] = GatewayConfig) -> list[Section]:
    """The reference's sections, one per object (per kind, for servers and identity
    providers), in the order the file nests them."""
    found: dict[type[BaseModel], _Found] = {}
    _walk(root, "", None, found)
    anchors = {model: _anchor(spot) for model, spot in found.items()}
    missing: list[str] = []
    result: list[Section] = []
    for spot in found.values():
        result.extend(_sections_of(spot, anchors, missing))
    anchors_used = [section.anchor for section in result]
    if len(set(anchors_used)) != len(anchors_used):
        raise AssertionError(f"two sections share an anchor: {sorted(anchors_used)}")
    if missing:
        raise MissingDescriptionError(
            "these keys have no description: add a docstring under each field: " + ", ".join(missing)
        )
    return result


def _walk(model: type[BaseModel], path: str, discriminator: str | None, found: dict[Any, _Found]) -> None:
    if model in found:
        found[model].paths.append(path)
        return
    found[model] = _Found(model, [path], discriminator)
    for name, info in model.model_fields.items():
        child = _join(path, json_key(model, name))
        key_name = _MAP_KEYS.get((model, name), "<key>")
        for nested, nested_path, nested_discriminator in _nested_models(
            full_annotation(info), child, key_name, info.discriminator
        ):
            _walk(nested, nested_path, nested_discriminator, found)


def _nested_models(
    annotation: Any, path: str, key_name: str, discriminator: Any
) -> Iterator[tuple[type[BaseModel], str, str | None]]:
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Annotated:
        inner = next((m.discriminator for m in arguments[1:] if isinstance(m, FieldInfo)), None)
        yield from _nested_models(arguments[0], path, key_name, inner or discriminator)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, path, discriminator if isinstance(discriminator, str) else None
    elif origin is list:
        yield from _nested_models(arguments[0], f"{path}[]", key_name, None)
    elif origin is dict:
        yield from _nested_models(arguments[1], f"{path}.{key_name}", "<key>", None)
    elif origin in (typing.Union, types.UnionType):
        for argument in arguments:
            yield from _nested_models(argument, path, key_name, discriminator)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _anchor(spot: _Found) -> str:
    if len(spot.paths) > 1:
        return _slug(_humanize(spot.model.__name__))
    path = spot.paths[0]
    anchor = _slug(path) or "top-level"
    if spot.discriminator is not None:
        key = json_key(spot.model, spot.discriminator)
        anchor += f"-{_slug(key)}-{_slug(str(_literal_value(spot.model, spot.discriminator)))}"
    return anchor


def _humanize(class_name: str) -> str:
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z]*", class_name)
    text = " ".join(word if word.isupper() else word.lower() for word in words)
    return text.removesuffix(" config")


def _literal_value(model: type[BaseModel], name: str) -> object:
    (value,) = typing.get_args(model.model_fields[name].annotation)
    return value


def _title(spot: _Found) -> str:
    if len(spot.paths) > 1:
        return _humanize(spot.model.__name__).capitalize()
    path = spot.paths[0]
    if not path:
        return "Top level"
    title = f"`{path}`"
    if spot.discriminator is not None:
        value = json.dumps(_literal_value(spot.model, spot.discriminator))
        title += f': `"{json_key(spot.model, spot.discriminator)}": {value}`'
    return title


def _sections_of(spot: _Found, anchors: Anchors, missing: list[str]) -> Iterator[Section]:
    model = spot.model
    single = len(spot.paths) == 1
    anchor, title = anchors[model], _title(spot)
    intro = _class_doc(model)
    if not single:
        places = ", ".join(f"`{path}`" for path in spot.paths)
        intro = f"{intro}\n\nFound at {places}." if intro else f"Found at {places}."
    names = list(model.model_fields)
    split = _SPLITS.get(model)
    if split is None:
        yield Section(anchor, title, tuple(spot.paths), intro, _entries(spot, names, anchors, missing))
        return
    kind_fields = frozenset().union(*(fields for _, _, fields in split.kinds))
    common = [name for name in names if name not in kind_fields]
    yield Section(
        anchor,
        f"{title}: {split.common_title}",
        tuple(spot.paths),
        intro,
        _entries(spot, common, anchors, missing),
    )
    for suffix, kind_title, fields in split.kinds:
        kind_intro = f"Keys that apply to {kind_title}, besides those of [{split.common_title}](#{anchor})."
        if suffix.startswith("transporttype-"):
            kind_intro = (
                f"Keys of a server with {kind_title}, besides those of [every server](#{anchor}) "
                f"and [every direct server](#{anchor}-type-direct)."
            )
        yield Section(
            f"{anchor}-{suffix}",
            f"{title}: {kind_title}",
            tuple(spot.paths),
            kind_intro,
            _entries(spot, [name for name in names if name in fields], anchors, missing),
        )


def _entries(
    spot: _Found, names: Sequence[str], anchors: Anchors, missing: list[str]
) -> tuple[KeyEntry, ...]:
    model = spot.model
    single = len(spot.paths) == 1
    ignored = _ignored_go_keys()
    entries = []
    for name in names:
        info = model.model_fields[name]
        key = json_key(model, name)
        path = _join(spot.paths[0], key) if single else key
        description = _field_docs(model).get(name) or info.description or ""
        if not description:
            missing.append(_join(spot.paths[0], key))
        notes = [description]
        notes.extend(
            f"**Ignored**: {message}."
            for ignored_path, message in ignored.items()
            if single and (path == ignored_path or path.startswith(ignored_path + "."))
        )
        other_keys = _other_keys(name, info)
        if other_keys:
            notes.append("Also read as " + ", ".join(f"`{other}`" for other in other_keys) + ".")
        if info.examples:
            examples = ", ".join(f"`{json_text(example)}`" for example in info.examples)
            notes.append(f"Example: {examples}.")
        entries.append(
            KeyEntry(
                path=path,
                model=model,
                field_name=name,
                type_text=type_text(info, anchors),
                default_text=default_text(info),
                description=" ".join(note for note in notes if note),
            )
        )
    return tuple(entries)


def _other_keys(name: str, info: FieldInfo) -> list[str]:
    """The keys besides its own that a field is read from (snake_case aside)."""
    choices = getattr(info.validation_alias, "choices", [])
    return [choice for choice in choices if isinstance(choice, str) and choice not in {info.alias, name}]


# --- descriptions -----------------------------------------------------------------------


def _class_node(model: type[BaseModel]) -> ast.ClassDef | None:
    """The class statement of `model`, found by `inspect` (nested classes too)."""
    try:
        source = textwrap.dedent(inspect.getsource(model))
    except (OSError, TypeError):
        return None  # made at run time: it has no source to read docstrings from
    node = ast.parse(source).body[0]
    return node if isinstance(node, ast.ClassDef) else None


@functools.cache
def _field_docs(model: type[BaseModel]) -> dict[str, str]:
    """The attribute docstrings of `model`'s fields, its base classes' included."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        node = _class_node(cls) if issubclass(cls, BaseModel) and cls is not BaseModel else None
        if node is None:
            continue
        for statement, following in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[statement.target.id] = _one_line(following.value.value)
    return docs


def _class_doc(model: type[BaseModel]) -> str:
    doc = model.__doc__ or ""
    paragraphs = inspect.cleandoc(doc).split("\n\n") if doc else []
    return "\n\n".join(_one_line(paragraph) for paragraph in paragraphs)


def _one_line(text: str) -> str:
    return " ".join(textwrap.dedent(text).split())


# --- keys of the Go mcp-front ------------------------------------------------------------

# A configuration setting every key the Go mcp-front has and this gateway ignores, so that
# `inert_keys` itself says which they are and what to do about them.
_GO_SERVER: Final = "go-server"
_GO_KEYS_DOCUMENT: Final[dict[str, Any]] = {
    "proxy": {
        "admin": {"enabled": False},
        "auth": {
            "kind": "oauth",
            "issuer": "http://localhost:8080",
            "idp": {
                "provider": "google",
                "clientId": "id",
                "clientSecret": "secret",
                "redirectUri": "http://localhost:8080/oauth/callback",
            },
            "allowedDomains": ["example.com"],
            "encryptionKey": "k" * 32,
            "jwtSecret": "j" * 32,
            "gcpProject": "project",
            "firestoreDatabase": "database",
            "firestoreCollection": "collection",
        },
    },
    "mcpServers": {
        _GO_SERVER: {
            "transportType": "stdio",
            "command": "true",
            "options": {"logEnabled": True, "authTokens": ["token"]},
        }
    },
}


@functools.cache
def _ignored_go_keys() -> dict[str, str]:
    """Key path → why it is ignored and what to do, for each Go key that has no effect."""
    config = GatewayConfig.model_validate(_GO_KEYS_DOCUMENT)
    server_prefix = f"mcpServers.{_GO_SERVER}."
    return {
        issue.path.replace(server_prefix, "mcpServers.<name>.", 1): (
            f"{issue.message}; {issue.fix}" if issue.fix else issue.message
        )
        for issue in inert_keys(config)
        if issue.path is not None
    }


def _go_keys_section() -> str:
    legacy = ", ".join(f"`{old}` (as `idp.{new}`)" for old, new in _LEGACY_GOOGLE_KEYS.items())
    lines = [
        "Files written for the Go mcp-front load unchanged. Its keys that this gateway reads "
        "but does not use are marked **Ignored** above; `mcp-front validate` prints each one "
        "as a warning, and the gateway logs them when it starts:",
        "",
        *(f"- `{path}`: {message}." for path, message in _ignored_go_keys().items()),
        "",
        "Keys it reads under another name:",
        "",
        f'- `proxy.auth`: {legacy}, read as an `idp` with `"provider": "google"`; a block cannot have both.',
        "- `proxy.auth.dangerouslyAcceptIssuerAudience`: read as `proxy.auth.resourceFallback`.",
        '- `proxy.auth.storage`: a string, `"sqlite"`, is read as `{"kind": "sqlite"}`; '
        '`"firestore"` is refused.',
        "- `mcpServers.<name>.serviceAuths[].name`: read as `user`.",
    ]
    return "\n".join(lines)


# --- Markdown ----------------------------------------------------------------------------

_PREAMBLE: Final = f"""\
# Configuration reference

<!-- Generated from the configuration models by `{REGENERATE_COMMAND}`: do not edit. -->

Every key of the configuration file, with its type, default, allowed values and what it
does. How the pieces fit together, with examples, is in [Configuration](configuration.md).

- Keys are written in camelCase, as here; the snake_case spelling (`transport_type`) is
  read too. A key that is not listed here is an error.
- `<name>` stands for a service's name, `<key>` for any key of a free-form object, and `[]`
  for each item of a list.
- **duration**: a Go duration string such as `"90s"`, `"30m"` or `"1h30m"` (units `h`, `m`,
  `s`, `ms`, `us`, `ns`); a bare number is refused. **URL**: an absolute `http://` or
  `https://` URL. **origin**: `scheme://host[:port]`. **listen address**: `":8080"`,
  `"127.0.0.1:9000"` or `"[::1]:9000"`.
- <a id="secrets"></a>**secret**: a credential, never shown in errors, logs or the configuration's `repr`.
  Write it as `{{"$env": "NAME"}}` (an environment variable) or `{{"$file": "path"}}` (a
  file's contents) to keep it out of the file. Any other string can be such a reference
  too; `{{"$userToken": …}}` only where its type says so. See
  [references](configuration.md#references).
- Default **required**: the key must be given. **none**: absent unless given.
"""


def config_reference(root: type[BaseModel] = GatewayConfig) -> str:
    """The reference as Markdown: a table of contents, then one section per object."""
    found = sections(root)
    parts = [_PREAMBLE, "## Contents\n"]
    parts.append("\n".join(f"- [{section.title}](#{section.anchor})" for section in found))
    parts.append("- [Keys of the Go mcp-front](#keys-of-the-go-mcp-front)\n")
    parts.extend(_section_markdown(section) for section in found)
    parts.append('<a id="keys-of-the-go-mcp-front"></a>\n\n## Keys of the Go mcp-front\n')
    parts.append(_go_keys_section())
    return "\n".join(parts).rstrip("\n") + "\n"


def _section_markdown(section: Section) -> str:
    lines = [f'<a id="{section.anchor}"></a>', "", f"## {section.title}", ""]
    if section.intro:
        lines += [section.intro, ""]
    if section.entries:
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        lines += [
            f"| `{entry.path}` | {_cell(entry.type_text)} | {_cell(entry.default_text)} | "
            f"{_cell(entry.description)} |"
            for entry in section.entries
        ]
    else:
        lines.append("No keys besides its kind.")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> None:
    sys.stdout.write(config_reference())


if __name__ == "__main__":
    main()

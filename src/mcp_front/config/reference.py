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
from datetime import timedelta
from typing import Any, Final, Literal

import annotated_types
from pydantic import AfterValidator, BaseModel, JsonValue, SecretStr
from pydantic.fields import FieldInfo

from mcp_front.config.compatibility import inert_keys
from mcp_front.config.durations import Duration, PositiveDuration, format_duration
from mcp_front.config.models import GatewayConfig, IdentityProviderConfig, ServerConfig, ServicePolicy
from mcp_front.config.models._base import json_key
from mcp_front.config.models.auth import _LEGACY_GOOGLE_KEYS
from mcp_front.config.models.gateway import check_service_name
from mcp_front.config.models.limits import check_proxy_address
from mcp_front.config.models.servers import _AGGREGATE_FIELDS, _DIRECT_FIELDS, _TRANSPORT_FIELDS
from mcp_front.config.models.values import (
    check_base_url,
    check_http_url,
    check_listen_address,
    check_regular_expression,
    check_tool_name,
    normalize_email_domain,
    normalize_origin,
)
from mcp_front.config.references import UserTokenTemplate

__all__ = [
    "REGENERATE_COMMAND",
    "KeyEntry",
    "MissingDescriptionError",
    "Section",
    "config_reference",
    "sections",
]

REGENERATE_COMMAND: Final = "python -m mcp_front.config.reference > docs/config-reference.md"

_ANY_DURATION: Final = typing.get_args(Duration)[1]
_POSITIVE_DURATION: Final = typing.get_args(PositiveDuration)[1]

# Checked strings, named as a user knows them rather than as the `str` they are.
_CHECKED_STRINGS: Final[dict[object, str]] = {
    check_http_url: "URL",
    check_base_url: "URL",
    normalize_origin: "origin",
    check_listen_address: "listen address",
    normalize_email_domain: "email domain",
    check_tool_name: "tool name",
    check_regular_expression: "regular expression",
    check_service_name: "service name",
    check_proxy_address: "IP address or CIDR network",
}
_SCALARS: Final[dict[object, str]] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    SecretStr: "secret",
    UserTokenTemplate: '`{"$userToken": "…{{token}}…"}`',
}
# What stands for a key of a free-form object in a key path.
_MAP_KEYS: Final[dict[tuple[type[BaseModel], str], str]] = {
    (GatewayConfig, "mcp_servers"): "<name>",
    (ServicePolicy, "tools"): "<tool>",
}


class MissingDescriptionError(Exception):
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
            _full_annotation(info), child, key_name, info.discriminator
        ):
            _walk(nested, nested_path, nested_discriminator, found)


def _full_annotation(info: FieldInfo) -> Any:
    """The field's type with the metadata pydantic lifted off it put back."""
    return typing.Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation


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


def _sections_of(spot: _Found, anchors: dict[type[BaseModel], str], missing: list[str]) -> Iterator[Section]:
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
    spot: _Found, names: Sequence[str], anchors: dict[type[BaseModel], str], missing: list[str]
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
            notes.append("Example: " + ", ".join(f"`{_json(example)}`" for example in info.examples) + ".")
        entries.append(
            KeyEntry(
                path=path,
                model=model,
                field_name=name,
                type_text=_type_text(info, anchors),
                default_text=_default_text(info),
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


# --- types and defaults -----------------------------------------------------------------


def _type_text(info: FieldInfo, anchors: dict[type[BaseModel], str]) -> str:
    text = _describe(_full_annotation(info), anchors)
    default = info.get_default(call_default_factory=True)
    if not info.is_required() and default is not None and _admits_none(info.annotation):
        text += ", or `null`"
    return text


def _admits_none(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def _describe(annotation: Any, anchors: dict[type[BaseModel], str]) -> str:
    kind, constraints = _kind(annotation, anchors)
    return ", ".join([kind, *constraints])


def _kind(annotation: Any, anchors: dict[type[BaseModel], str]) -> tuple[str, list[str]]:
    """What a value of `annotation` is, in the file's terms, and the limits on it."""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _annotated_kind(arguments[0], arguments[1:], anchors)
    if annotation in _SCALARS:
        return _SCALARS[annotation], []
    if annotation is JsonValue:
        return "any JSON value", []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return (f"[object](#{anchors[annotation]})" if annotation in anchors else "object"), []
    if origin is Literal:
        values = ", ".join(f"`{json.dumps(value)}`" for value in arguments)
        return (values if len(arguments) == 1 else f"one of {values}"), []
    if origin is list:
        return f"list of {_each(arguments[0], anchors)}", []
    if origin is dict:
        if arguments[1] is JsonValue:
            return "object", []
        key = _describe(arguments[0], anchors)
        keyed = f", keyed by {key}" if key != "string" else ""
        return f"object of {_each(arguments[1], anchors)}{keyed}", []
    if origin in (typing.Union, types.UnionType):
        choices = [argument for argument in arguments if argument is not type(None)]
        models = [c for c in choices if isinstance(c, type) and issubclass(c, BaseModel)]
        if len(models) > 1 and len(models) == len(choices):
            links = ", ".join(_variant_link(model, anchors) for model in models)
            return f"object, one of: {links}", []
        if len(choices) == 1:
            return _kind(choices[0], anchors)
        return " or ".join(_describe(choice, anchors) for choice in choices), []
    return str(getattr(annotation, "__name__", annotation)), []


def _each(annotation: Any, anchors: dict[type[BaseModel], str]) -> str:
    """An item of a list or a value of an object, its own limits said as "each"."""
    kind, constraints = _kind(annotation, anchors)
    return f"{kind} (each {', '.join(constraints)})" if constraints else kind


def _variant_link(model: type[BaseModel], anchors: dict[type[BaseModel], str]) -> str:
    label = next(
        (
            json.dumps(typing.get_args(info.annotation)[0])
            for info in model.model_fields.values()
            if typing.get_origin(info.annotation) is Literal and len(typing.get_args(info.annotation)) == 1
        ),
        model.__name__,
    )
    return f"[`{label}`](#{anchors[model]})" if model in anchors else f"`{label}`"


def _annotated_kind(
    base: Any, metadata: Sequence[object], anchors: dict[type[BaseModel], str]
) -> tuple[str, list[str]]:
    kind, constraints = _kind(base, anchors)
    for item in metadata:
        if item is _ANY_DURATION:
            kind = "duration"
        elif item is _POSITIVE_DURATION:
            kind = "duration"
            constraints.append("longer than zero")
        elif isinstance(item, AfterValidator) and item.func in _CHECKED_STRINGS:
            kind = _CHECKED_STRINGS[item.func]
        elif isinstance(item, FieldInfo):
            constraints.extend(_constraints(item.metadata, base))
        else:
            constraints.extend(_constraints([item], base))
    return kind, constraints


def _constraints(metadata: Sequence[object], base: Any) -> Iterator[str]:
    items = "item" if typing.get_origin(base) in (list, dict) else "character"
    for item in metadata:
        pattern = getattr(item, "pattern", None)
        if isinstance(item, annotated_types.Ge):
            yield f"at least {item.ge}"
        elif isinstance(item, annotated_types.Le):
            yield f"at most {item.le}"
        elif isinstance(item, annotated_types.MinLen):
            yield "not empty" if item.min_length == 1 else f"at least {item.min_length} {items}s"
        elif isinstance(item, annotated_types.MaxLen):
            yield f"at most {item.max_length} {items}s"
        elif isinstance(pattern, str):
            yield f"matching `{pattern}`"


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "none"
    if isinstance(default, BaseModel):
        shown = _model_default(default)
        return f"`{_json(shown)}`" if shown else "its keys' defaults"
    return f"`{_json(default)}`"


def _model_default(model: BaseModel) -> dict[str, Any]:
    """The keys of a default object that differ from their own defaults, and its kind."""
    shown = model.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for name, info in type(model).model_fields.items():
        if typing.get_origin(info.annotation) is Literal and len(typing.get_args(info.annotation)) == 1:
            shown = {json_key(type(model), name): getattr(model, name), **shown}
    return shown


def _json(value: object) -> str:
    if isinstance(value, timedelta):
        return json.dumps(format_duration(value))
    if isinstance(value, SecretStr):
        return "a secret"
    if isinstance(value, BaseModel):
        return _json(value.model_dump(mode="json", by_alias=True))
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


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
- **secret**: a credential, never shown in errors, logs or the configuration's `repr`.
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

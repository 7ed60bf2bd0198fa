"""Turn pydantic's validation errors into configuration issues a user can act on.

pydantic reports locations in its own terms (union members, discriminator tags, dict-key
markers) and messages that quote the input. This module walks each error's location
through the models and the document side by side, to name the key the user wrote, know
which model it belongs to (for "did you mean"), and whether its value may be quoted.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from mcp_front.config.durations import format_duration
from mcp_front.config.errors import ConfigIssue, KeyPath, format_path
from mcp_front.config.models._base import input_keys, mentions_type

_EXPECTED_TYPE: Final = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}

_BOUNDS: Final = {
    "greater_than": ("gt", "more than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}

_QUOTED: Final = re.compile(r"'((?:[^'\\]|\\.)*)'")
_MAX_QUOTED_LENGTH: Final = 60


@dataclass(frozen=True, slots=True)
class _Location:
    """Where an error points, in the user's terms."""

    path: KeyPath
    annotation: Any
    """The type expected at `path`."""
    model: type[BaseModel] | None
    """The model whose key `path` ends with, if it ends with one."""
    field: FieldInfo | None
    """The innermost model field containing the location."""
    in_union_member: bool
    """The error came from one of several alternatives tried for the same value."""


def describe_validation_error(
    error: ValidationError,
    *,
    model: type[BaseModel],
    document: Any,
    secret_paths: frozenset[KeyPath] = frozenset(),
    unresolved_paths: frozenset[KeyPath] = frozenset(),
) -> list[ConfigIssue]:
    """The issues behind `error`, raised validating `document` as `model`.

    Values at `secret_paths` (from `$env` and `$file`) are never quoted, and errors at or
    under `unresolved_paths` (a reference that failed, already reported) are left out.
    """
    issues: list[ConfigIssue] = []
    union_paths: set[KeyPath] = set()
    for detail in error.errors(include_url=False):
        location = _locate(detail["loc"], model, document)
        if any(_within(location.path, unresolved) for unresolved in unresolved_paths):
            continue
        if location.in_union_member:
            # Each alternative fails in its own way; the first one speaks for all.
            if location.path in union_paths:
                continue
            union_paths.add(location.path)
        issue = _describe(detail, location, secret_paths)
        if issue not in issues:
            issues.append(issue)
    return issues


def _describe(detail: ErrorDetails, location: _Location, secret_paths: frozenset[KeyPath]) -> ConfigIssue:
    kind = detail["type"]
    context = detail.get("ctx", {})
    value = detail["input"]
    path = location.path
    secret_field = location.field is not None and mentions_type(location.field.annotation, _is_secret)

    def quote(value: object, at: KeyPath) -> str | None:
        """`value` for the message, unless it is, or may be, a secret."""
        if secret_field or any(_within(at, secret) for secret in secret_paths):
            return None
        return _quote(value)

    quoted = quote(value, path)

    if kind == "missing":
        return ConfigIssue(format_path(path), "missing required key", _how_to_add(path, location.field))
    if kind == "extra_forbidden":
        return ConfigIssue(format_path(path), "unknown key", _known_keys_hint(path[-1], location.model))
    if kind in {"literal_error", "enum"}:
        return _unknown_value(path, value, _quoted_values(context.get("expected", "")), quoted)
    if kind == "union_tag_invalid":
        key = _quoted_values(context["discriminator"])[0]
        tag = context["tag"]
        return _unknown_value(
            (*path, key), tag, _quoted_values(context["expected_tags"]), quote(tag, (*path, key))
        )
    if kind == "union_tag_not_found":
        key = _quoted_values(context["discriminator"])[0]
        tags = ", ".join(f'"{tag}"' for tag in _tags(location.annotation, key))
        return ConfigIssue(format_path((*path, key)), "missing required key", f'add "{key}": one of {tags}')
    if kind in _EXPECTED_TYPE:
        return ConfigIssue(format_path(path), f"expected {_EXPECTED_TYPE[kind]}, got {_json_kind(value)}")
    if kind in {"too_short", "string_too_short"}:
        minimum = context.get("min_length", 1)
        unit = "characters" if kind == "string_too_short" else "items"
        message = "must not be empty" if minimum == 1 else f"needs at least {minimum} {unit}"
        return ConfigIssue(format_path(path), message)
    if kind in _BOUNDS:
        limit = context[_BOUNDS[kind][0]]
        message = f"must be {_BOUNDS[kind][1]} {_describe_limit(limit)}"
        return ConfigIssue(format_path(path), f"{message}, got {quoted}" if quoted else message)
    if "fix" in context:
        # Raised through `config_value_error`: the message is ours and value-free.
        message = detail["msg"]
        if context.get("show_input") and quoted:
            message = f"{message}, got {quoted}"
        return ConfigIssue(format_path(path), message, context["fix"])
    return ConfigIssue(format_path(path), detail["msg"].removeprefix("Value error, "))


def _unknown_value(path: KeyPath, value: object, allowed: Sequence[str], quoted: str | None) -> ConfigIssue:
    alternatives = ", ".join(f'"{option}"' for option in allowed)
    expected = alternatives if len(allowed) == 1 else f"one of {alternatives}"
    message = (
        f"unknown value {quoted}; expected {expected}" if quoted else f"unknown value; expected {expected}"
    )
    close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.5) if isinstance(value, str) else []
    return ConfigIssue(format_path(path), message, f'did you mean "{close[0]}"?' if close else None)


def _known_keys_hint(key: str | int, model: type[BaseModel] | None) -> str | None:
    if model is None or not isinstance(key, str):
        return None
    known = sorted({field.alias or name for name, field in model.model_fields.items()})
    by_lowercase = {option.lower(): option for option in known}
    close = [by_lowercase[key.lower()]] if key.lower() in by_lowercase else []
    close = close or difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f'did you mean "{close[0]}"?'
    return f"remove it; the keys here are: {', '.join(known)}"


def _how_to_add(path: KeyPath, field: FieldInfo | None) -> str | None:
    if not path or not isinstance(path[-1], str):
        return None
    key = path[-1]
    if field is not None and field.examples:
        return f'add "{key}": {json.dumps(field.examples[0], ensure_ascii=False)}'
    if field is not None and typing.get_origin(field.annotation) is typing.Literal:
        options = [json.dumps(option) for option in typing.get_args(field.annotation)]
        return (
            f'add "{key}": {options[0]}' if len(options) == 1 else f'add "{key}": one of {", ".join(options)}'
        )
    return f'add "{key}"'


def _locate(loc: tuple[str | int, ...], root: type[BaseModel], document: Any) -> _Location:
    path: list[str | int] = []
    annotation: Any = root
    value = document
    model: type[BaseModel] | None = None
    field: FieldInfo | None = None
    skipped = False
    for segment in loc:
        members = _union_members(annotation)
        current_model = _choose_model(members, value)
        if current_model is not None and isinstance(segment, str):
            found = _field_for_key(current_model, segment)
            if found is None and not (isinstance(value, Mapping) and segment in value):
                skipped = True  # the tag pydantic gives a member of a discriminated union
                continue
            model, field = current_model, found
            annotation = found.annotation if found is not None else Any
        elif (item := _container_item(members, segment, value)) is not None:
            model, annotation = None, item
        else:
            # A member of a plain union ("str"), or pydantic's "[key]" for a dict key.
            skipped = segment != "[key]"
            continue
        path.append(segment)
        value = _child(value, segment)
        skipped = False
    return _Location(tuple(path), annotation, model, field, skipped)


def _union_members(annotation: Any) -> list[Any]:
    """`X | Y | None`, `Annotated[X, ...]` and aliases of those, flattened to their parts."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _union_members(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [member for argument in typing.get_args(annotation) for member in _union_members(argument)]
    return [annotation]


def _choose_model(members: Sequence[Any], value: Any) -> type[BaseModel] | None:
    """The model among `members` that `value` is meant for, by its discriminator values."""
    models = [member for member in members if isinstance(member, type) and issubclass(member, BaseModel)]
    if len(models) <= 1 or not isinstance(value, Mapping):
        return models[0] if models else None
    for candidate in models:
        literals = {
            field.alias or name: typing.get_args(field.annotation)
            for name, field in candidate.model_fields.items()
            if typing.get_origin(field.annotation) is typing.Literal
        }
        if all(value.get(key) in options for key, options in literals.items()):
            return candidate
    return models[0]


def _tags(annotation: Any, key: str) -> list[str]:
    """The values the `key` field of the models in a discriminated union may take."""
    return [
        tag
        for member in _union_members(annotation)
        if isinstance(member, type) and issubclass(member, BaseModel)
        for name, field in member.model_fields.items()
        if key in input_keys(name, field)
        for tag in typing.get_args(field.annotation)
    ]


def _container_item(members: Sequence[Any], segment: str | int, value: Any) -> Any | None:
    """The type of `value[segment]` if some member is a list or dict type that has it."""
    for member in members:
        origin = typing.get_origin(member)
        arguments = typing.get_args(member)
        if origin in {list, tuple, set, frozenset} and isinstance(segment, int):
            return arguments[0] if arguments else Any
        if (
            origin in {dict, Mapping}
            and isinstance(segment, str)
            and isinstance(value, Mapping)
            and segment in value
        ):
            return arguments[1] if len(arguments) == 2 else Any
    return None


def _field_for_key(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if key in input_keys(name, field):
            return field
    return None


def _child(value: Any, segment: str | int) -> Any:
    if isinstance(value, Mapping):
        return value.get(segment)
    if isinstance(value, list) and isinstance(segment, int) and 0 <= segment < len(value):
        return value[segment]
    return None


def _within(path: KeyPath, ancestor: KeyPath) -> bool:
    return path[: len(ancestor)] == ancestor


def _is_secret(kind: type) -> bool:
    return issubclass(kind, SecretStr)


def _quote(value: object) -> str | None:
    """`value` as JSON, if it is a plain scalar that may appear in a message."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        shown = value if len(value) <= _MAX_QUOTED_LENGTH else value[: _MAX_QUOTED_LENGTH - 1] + "…"
        return json.dumps(shown, ensure_ascii=False)
    return None


def _quoted_values(text: str) -> list[str]:
    """The values in pydantic's `'a', 'b' or 'c'`."""
    return [match.replace("\\'", "'") for match in _QUOTED.findall(text)]


def _json_kind(value: object) -> str:
    match value:
        case bool():
            return "true or false"
        case int() | float():
            return "a number"
        case str() | SecretStr():
            return "a string"
        case list() | tuple():
            return "a list"
        case Mapping():
            return "an object"
        case None:
            return "null"
    return "something else"


def _describe_limit(limit: object) -> str:
    if isinstance(limit, timedelta):
        return format_duration(limit)
    return str(limit)

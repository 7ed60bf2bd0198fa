"""How the configuration reference says what a key holds: its type in the file's terms
(a duration, a URL, a secret), the limits on it, and its default."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, Final, Literal

import annotated_types
from pydantic import AfterValidator, BaseModel, JsonValue, SecretStr
from pydantic.fields import FieldInfo

from mcp_front.config.durations import Duration, PositiveDuration, format_duration
from mcp_front.config.models._base import json_key
from mcp_front.config.models.gateway import check_service_name
from mcp_front.config.models.limits import check_proxy_address
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

__all__ = ["Anchors", "default_text", "full_annotation", "json_text", "type_text"]

Anchors = dict[type[BaseModel], str]
"""The anchor of each model's section, for links to it."""

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
    SecretStr: "[secret](#secrets)",
    UserTokenTemplate: '`{"$userToken": "…{{token}}…"}`',
}


def full_annotation(info: FieldInfo) -> Any:
    """The field's type with the metadata pydantic lifted off it put back."""
    return typing.Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation


def type_text(info: FieldInfo, anchors: Anchors) -> str:
    """What the field holds, with its limits: "duration, longer than zero", "list of origin"."""
    text = _describe(full_annotation(info), anchors)
    default = info.get_default(call_default_factory=True)
    if not info.is_required() and default is not None and _admits_none(info.annotation):
        text += ", or `null`"
    return text


def _admits_none(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def _describe(annotation: Any, anchors: Anchors) -> str:
    kind, constraints = _kind(annotation, anchors)
    return ", ".join([kind, *constraints])


def _kind(annotation: Any, anchors: Anchors) -> tuple[str, list[str]]:
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


def _each(annotation: Any, anchors: Anchors) -> str:
    """An item of a list or a value of an object, its own limits said as "each"."""
    kind, constraints = _kind(annotation, anchors)
    return f"{kind} (each {', '.join(constraints)})" if constraints else kind


def _variant_link(model: type[BaseModel], anchors: Anchors) -> str:
    label = next(
        (
            json.dumps(typing.get_args(info.annotation)[0])
            for info in model.model_fields.values()
            if typing.get_origin(info.annotation) is Literal and len(typing.get_args(info.annotation)) == 1
        ),
        model.__name__,
    )
    return f"[`{label}`](#{anchors[model]})" if model in anchors else f"`{label}`"


def _annotated_kind(base: Any, metadata: Sequence[object], anchors: Anchors) -> tuple[str, list[str]]:
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


def default_text(info: FieldInfo) -> str:
    """The field's default as written in the file, "required", or "none"."""
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "none"
    if isinstance(default, BaseModel):
        shown = _model_default(default)
        return f"`{json_text(shown)}`" if shown else "its keys' defaults"
    return f"`{json_text(default)}`"


def _model_default(model: BaseModel) -> dict[str, Any]:
    """The keys of a default object that differ from their own defaults, and its kind."""
    shown = model.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for name, info in type(model).model_fields.items():
        if typing.get_origin(info.annotation) is Literal and len(typing.get_args(info.annotation)) == 1:
            shown = {json_key(type(model), name): getattr(model, name), **shown}
    return shown


def json_text(value: object) -> str:
    """A value as the configuration file writes it (durations as Go strings)."""
    if isinstance(value, timedelta):
        return json.dumps(format_duration(value))
    if isinstance(value, SecretStr):
        return "a secret"
    if isinstance(value, BaseModel):
        return json_text(value.model_dump(mode="json", by_alias=True))
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))

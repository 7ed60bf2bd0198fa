"""What every configuration model shares: the JSON naming, and how rules are reported."""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, SecretStr, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails

from mcp_front.config.errors import KeyPath, config_value_error


class ConfigModel(BaseModel):
    """Base of the configuration models: immutable, strict about unknown keys, camelCase in
    JSON (`transportType`) and snake_case in Python (`transport_type`), either accepted."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        frozen=True,
        alias_generator=to_camel,
        # pydantic's own error text would otherwise quote inputs, secrets included.
        hide_input_in_errors=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _reveal_references_in_plain_fields(cls, data: Any) -> Any:
        """Unwrap `$env`/`$file` values given to fields that are not secrets.

        Reference resolution cannot know what a value is for, so it hands every resolved
        value over as a `SecretStr`. Fields that hold credentials keep it; a field that
        holds a URL, a command or a number takes the plain text.
        """
        if not isinstance(data, Mapping):
            return data
        plain_keys = _plain_field_keys(cls)
        return {key: _reveal(value) if key in plain_keys else value for key, value in data.items()}

    def _customized_fields(self) -> frozenset[str]:
        """The fields given a value other than their default.

        Rules like "url is only used with sse" look at these rather than at the keys
        present, so that a full dump, `"url": null` included, reads back.
        """
        fields = type(self).model_fields
        return frozenset(
            name
            for name in self.model_fields_set
            if getattr(self, name) != fields[name].get_default(call_default_factory=True)
        )


@functools.cache
def _plain_field_keys(model: type[BaseModel]) -> frozenset[str]:
    """The input keys (aliases and names) of `model`'s fields that can hold no secret.

    Fields made of nested models are left out too: those models decide for themselves.
    """
    return frozenset(
        key
        for name, field in model.model_fields.items()
        if not mentions_type(field.annotation, lambda kind: issubclass(kind, SecretStr | BaseModel))
        for key in input_keys(name, field)
    )


def input_keys(name: str, field: FieldInfo) -> frozenset[str]:
    """Every key under which a field's value is read: its JSON key(s) and its Python name."""
    keys = {name}
    if field.alias:
        keys.add(field.alias)
    if isinstance(field.validation_alias, str):
        keys.add(field.validation_alias)
    elif isinstance(field.validation_alias, AliasChoices):
        keys.update(choice for choice in field.validation_alias.choices if isinstance(choice, str))
    return frozenset(keys)


def mentions_type(annotation: Any, matches: Callable[[type], bool]) -> bool:
    """Whether a class for which `matches` holds appears anywhere in a type annotation."""
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        return matches(annotation)
    return any(mentions_type(argument, matches) for argument in typing.get_args(annotation))


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return [_reveal(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _reveal(item) for key, item in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class Problem:
    """A rule broken by a model's values together, found after its fields were validated.

    `location` is the JSON key path, relative to the model, of the value to change; `value`
    is that value, quoted in the report when `show_value` is set and it is not a secret.
    """

    location: KeyPath
    message: str
    fix: str | None = None
    value: object = None
    show_value: bool = False


def raise_problems(model: BaseModel, problems: Iterable[Problem]) -> None:
    """Report every problem at once, each at its own key, as one validation error.

    pydantic merges a `ValidationError` raised by a model validator into the enclosing
    one, prefixing each location with the model's own: a server's problem comes out at
    `mcpServers.<name>.<key>` alongside the errors found elsewhere in the file.
    """
    details = [
        InitErrorDetails(
            type=config_value_error(
                "config_rule", problem.message, fix=problem.fix, show_input=problem.show_value
            ),
            loc=problem.location,
            input=problem.value,
        )
        for problem in problems
    ]
    if details:
        raise ValidationError.from_exception_data(type(model).__name__, details)


def json_key(model: type[BaseModel], field_name: str) -> str:
    """The key a field is written under in the configuration file."""
    return model.model_fields[field_name].alias or field_name

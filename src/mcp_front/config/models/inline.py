"""Tools defined in the configuration itself, served as an MCP server by the gateway."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Final, Literal
from urllib.parse import urlsplit

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from pydantic import Field, JsonValue, SecretStr, field_validator, model_validator

from mcp_front.config.durations import PositiveDuration
from mcp_front.config.errors import KeyPath, config_value_error, format_path
from mcp_front.config.models._base import ConfigModel, Problem, raise_problems
from mcp_front.config.models.values import HttpUrlText, ToolName

PLACEHOLDER: Final = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_-]*)\}\}")
"""`{{name}}`: the top-level argument `name` of a tool call.

Names start with a letter or `_`, so Go templates that other tools take as arguments
(`docker ps --format {{.Names}}`) stay literal text.
"""


def placeholders(text: str) -> list[str]:
    """The argument names `text` refers to, in order."""
    return PLACEHOLDER.findall(text)


def _template_strings(value: JsonValue, path: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    """Every string inside a JSON body template, with its key path; keys are literal."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _template_strings(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _template_strings(item, (*path, key))


def _empty_object_schema() -> dict[str, JsonValue]:
    return {"type": "object", "properties": {}, "additionalProperties": False}


_ADDITIONAL_KEYWORDS: Final = ("additionalProperties", "patternProperties", "unevaluatedProperties")


class InlineHttpCall(ConfigModel):
    """The HTTP request a tool makes when called, instead of running a command.

    Without a `body`, the tool's arguments are sent as the JSON body (as the query string
    for GET).
    """

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    """The request's HTTP method."""
    url: HttpUrlText = Field(examples=["https://api.example.com/search"])
    """Where the request goes; `{{argument}}` placeholders may fill its path and query, never its scheme or
    host."""
    headers: dict[str, str | SecretStr] = Field(default_factory=dict)
    """Headers sent with the request; values may be secrets, or hold placeholders."""
    body: JsonValue = None
    """A JSON body whose strings may hold placeholders; without it, the arguments are the body (the query
    string for GET)."""


class InlineTool(ConfigModel):
    """One tool: its MCP description, and either a command to run or an HTTP call to make."""

    name: ToolName = Field(examples=["list_buckets"])
    """The tool's name, unique within the service."""
    description: str = ""
    """What the tool does, for the model."""
    input_schema: dict[str, JsonValue] = Field(default_factory=_empty_object_schema)
    """The JSON Schema of its arguments, of `"type": "object"`; arguments it does not declare are refused
    unless it says otherwise."""
    command: str | None = Field(default=None, min_length=1, examples=["gcloud"])
    """A program to run for each call (no placeholders in it); either this or `http`."""
    args: list[str] = Field(default_factory=list)
    """The program's arguments; `{{argument}}` placeholders are filled in from the call."""
    env: dict[str, str | SecretStr] = Field(default_factory=dict)
    """Environment variables for the program; values may be secrets, or hold placeholders."""
    http: InlineHttpCall | None = None
    """An HTTP request to make for each call; either this or `command`."""
    timeout: PositiveDuration | None = None
    """How long one call may take; without it, the service's `timeout`, else 60 s."""

    @field_validator("input_schema")
    @classmethod
    def _describes_an_object(cls, schema: dict[str, JsonValue]) -> dict[str, JsonValue]:
        """A JSON Schema of an object that takes only the arguments it declares, unless it
        says otherwise: an argument the tool never mentions is a caller's mistake, or a probe."""
        if schema.get("type") != "object":
            raise config_value_error(
                "input_schema",
                'must be a JSON Schema with "type": "object"',
                fix='start from {"type": "object"}',
            )
        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as error:
            raise config_value_error("input_schema", f"is not a valid JSON Schema: {error.message}") from None
        if not any(keyword in schema for keyword in _ADDITIONAL_KEYWORDS):
            schema = {**schema, "additionalProperties": False}
        return schema

    @property
    def argument_names(self) -> frozenset[str]:
        """The top-level properties of `input_schema`: what placeholders may name."""
        properties = self.input_schema.get("properties")
        return frozenset(properties) if isinstance(properties, dict) else frozenset()

    def templates(self) -> Iterator[tuple[KeyPath, str]]:
        """Every text of the tool that placeholders are filled into, with its key path.

        Values read from `$env` or `$file` (secrets) are taken literally, never as templates.
        """
        for index, argument in enumerate(self.args):
            yield ("args", index), argument
        for name, value in self.env.items():
            if isinstance(value, str):
                yield ("env", name), value
        if self.http is not None:
            yield ("http", "url"), self.http.url
            for name, value in self.http.headers.items():
                if isinstance(value, str):
                    yield ("http", "headers", name), value
            yield from _template_strings(self.http.body, ("http", "body"))

    @model_validator(mode="after")
    def _runs_exactly_one_action(self) -> InlineTool:
        problems: list[Problem] = []
        if self.command is None and self.http is None:
            problems.append(
                Problem(("command",), 'a tool needs either "command" or "http"', fix='add "command": "..."')
            )
        if self.command is not None and self.http is not None:
            problems.append(Problem(("http",), 'a tool has either "command" or "http", not both'))
        if self.command is None:
            customized = self._customized_fields()
            problems.extend(
                Problem((key,), 'is only used with "command"', fix="remove it")
                for key in ("args", "env")
                if key in customized
            )
        problems.extend(self._placeholder_problems())
        raise_problems(self, problems)
        return self

    def _placeholder_problems(self) -> Iterator[Problem]:
        known = self.argument_names
        if self.command is not None and placeholders(self.command):
            yield Problem(
                ("command",),
                "takes no placeholders: the program run is fixed",
                fix='pass arguments in "args"',
            )
        for location, text in self.templates():
            for name in placeholders(text):
                if name not in known:
                    # The report cannot point inside a free-form JSON value, so the body's
                    # inner path is named in the message instead.
                    inner = location[2:] if location[:2] == ("http", "body") else ()
                    where = f" (at {format_path(inner)})" if inner else ""
                    yield Problem(
                        location[:2] if inner else location,
                        f'{{{{{name}}}}}{where} names no property of "inputSchema"',
                        fix=f'add "{name}" to inputSchema.properties, or fix the name',
                    )
        if self.http is not None:
            # Arguments may shape the path and query, never where the request goes (SSRF).
            parts = urlsplit(self.http.url)
            if placeholders(f"{parts.scheme}://{parts.netloc}"):
                yield Problem(
                    ("http", "url"),
                    "may not have placeholders in its scheme or host: arguments must not choose the server",
                    fix="write the host literally; put arguments in the path or query",
                )


class InlineConfig(ConfigModel):
    """The `inline` block of a server with `"transportType": "inline"`."""

    description: str = ""
    """What the service is for, as MCP clients are told."""
    tools: list[InlineTool] = Field(min_length=1)
    """The tools, at least one."""

    @model_validator(mode="after")
    def _names_are_unique(self) -> InlineConfig:
        counts = Counter(tool.name for tool in self.tools)
        raise_problems(
            self,
            (
                Problem(("tools", index, "name"), f'another tool is also named "{tool.name}"')
                for index, tool in enumerate(self.tools)
                if counts[tool.name] > 1
            ),
        )
        return self

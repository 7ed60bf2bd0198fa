"""Tools defined in the configuration itself, served as an MCP server by the gateway."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import Field, JsonValue, SecretStr, field_validator, model_validator

from mcp_front.config.durations import PositiveDuration
from mcp_front.config.errors import config_value_error
from mcp_front.config.models._base import ConfigModel, Problem, raise_problems
from mcp_front.config.models.values import HttpUrlText, ToolName


def _empty_object_schema() -> dict[str, JsonValue]:
    return {"type": "object", "properties": {}}


class InlineHttpCall(ConfigModel):
    """The HTTP request a tool makes when called, instead of running a command.

    Without a `body`, the tool's arguments are sent as the JSON body (as the query string
    for GET).
    """

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: HttpUrlText = Field(examples=["https://api.example.com/search"])
    headers: dict[str, str | SecretStr] = Field(default_factory=dict)
    body: JsonValue = None


class InlineTool(ConfigModel):
    """One tool: its MCP description, and either a command to run or an HTTP call to make."""

    name: ToolName = Field(examples=["list_buckets"])
    description: str = ""
    input_schema: dict[str, JsonValue] = Field(default_factory=_empty_object_schema)
    command: str | None = Field(default=None, min_length=1, examples=["gcloud"])
    args: list[str] = Field(default_factory=list)
    env: dict[str, str | SecretStr] = Field(default_factory=dict)
    http: InlineHttpCall | None = None
    timeout: PositiveDuration | None = None

    @field_validator("input_schema")
    @classmethod
    def _describes_an_object(cls, schema: dict[str, JsonValue]) -> dict[str, JsonValue]:
        if schema.get("type") != "object":
            raise config_value_error(
                "input_schema",
                'must be a JSON Schema with "type": "object"',
                fix='start from {"type": "object"}',
            )
        return schema

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
        raise_problems(self, problems)
        return self


class InlineConfig(ConfigModel):
    """The `inline` block of a server with `"transportType": "inline"`."""

    description: str = ""
    tools: list[InlineTool] = Field(min_length=1)

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

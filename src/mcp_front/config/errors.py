"""Configuration problems, each tied to the key it is about, reported all at once."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from pydantic_core import PydanticCustomError

from mcp_front.errors import MCPFrontError

KeyPath: TypeAlias = tuple[str | int, ...]
"""Where a value sits in the configuration document: object keys and list indices."""

_DOTTABLE_KEY: Final = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_$-]*")


def format_path(path: Sequence[str | int]) -> str:
    """Render a key path the way users read it: `mcpServers.fs.serviceAuths[0].tokens[1]`.

    Keys that would be ambiguous after a dot (`.well-known`, `my server`) are written as
    quoted subscripts: `mcpServers[".well-known"]`.
    """
    rendered = ""
    for segment in path:
        if isinstance(segment, int):
            rendered += f"[{segment}]"
        elif _DOTTABLE_KEY.fullmatch(segment):
            rendered += f".{segment}" if rendered else segment
        else:
            rendered += f"[{json.dumps(segment, ensure_ascii=False)}]"
    return rendered


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration.

    `path` is the dotted key path (empty for the document as a whole), `message` says what
    is wrong without ever quoting a secret, and `fix` (when known) says what to do about it.
    """

    path: str
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{text} — {self.fix}" if self.fix else text


class ConfigError(MCPFrontError):
    """A configuration that cannot be used, with every issue found in it.

    `str(error)` is a header naming the source, then one issue per line, indented:

        invalid configuration in config.json (2 problems):
          proxy.addr: must be "host:port" or ":port", got "8080" — for example ":8080"
          mcpServers.fs.transportType: unknown value "stdoi"; ... — did you mean "stdio"?
    """

    def __init__(self, issues: Iterable[ConfigIssue], *, source: str | None = None) -> None:
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.issues)
        where = f" in {self.source}" if self.source else ""
        header = f"invalid configuration{where} ({count} problem{'' if count == 1 else 's'}):"
        return "\n".join([header, *(f"  {issue}" for issue in self.issues)])


def config_value_error(
    kind: str, message: str, *, fix: str | None = None, show_input: bool = False
) -> PydanticCustomError:
    """A validation error in the shape the configuration's error report understands.

    `message` must not contain the offending value: the report appends it (", got ...")
    when `show_input` is set and the value is known not to be a secret.
    """
    return PydanticCustomError(kind, message, {"fix": fix, "show_input": show_input})

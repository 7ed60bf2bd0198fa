"""The arguments of an inline tool call: checked against the tool's schema, then filled in.

Every `{{name}}` refers to a top-level argument. Where a value lands decides how it is
written: as one whole argv element, percent-encoded in a URL, as a header value with no
line breaks, or as a typed JSON value in a body. A value that would change the meaning of
what surrounds it is refused with `ArgumentRefused`, and then nothing runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote, urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import validator_for
from pydantic import SecretStr

from mcp_front.config.models.inline import PLACEHOLDER
from mcp_front.errors import MCPFrontError

Arguments = Mapping[str, Any]

MAX_REPORTED_PROBLEMS: Final = 10
END_OF_OPTIONS: Final = "--"


class ArgumentRefused(MCPFrontError):
    """An argument value that cannot be used where the tool puts it."""


def validation_problems(schema: Mapping[str, Any], arguments: Arguments) -> list[str]:
    """What is wrong with `arguments` under `schema`, one line per problem; empty if valid."""
    validator = validator_for(schema, default=Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(arguments), key=lambda error: list(error.absolute_path))
    return [_describe(error) for error in errors[:MAX_REPORTED_PROBLEMS]]


def _describe(error: ValidationError) -> str:
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    return f"arguments{where}: {error.message}"


def as_text(value: Any) -> str:
    """A value as text: strings as they are, everything else as its JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def whole_placeholder(template: str) -> str | None:
    """The argument a template consists of entirely, if it is exactly one placeholder."""
    match = PLACEHOLDER.fullmatch(template)
    return match.group(1) if match else None


def fill(template: str, arguments: Arguments, encode: Callable[[str, str], str] | None = None) -> str:
    """`template` with each placeholder replaced by its argument's text ("" when absent).

    `encode(name, text)` turns a value's text into what may appear at its place.
    """

    def replace(match: Any) -> str:
        name: str = match.group(1)
        if name not in arguments:
            return ""
        text = as_text(arguments[name])
        return encode(name, text) if encode is not None else text

    return PLACEHOLDER.sub(replace, template)


def _no_nul(name: str, text: str) -> str:
    # The operating system ends argv and environment strings at NUL, silently cutting them.
    if "\0" in text:
        raise ArgumentRefused(f'argument "{name}" contains a NUL character')
    return text


def _smuggled_option(template: str, text: str, arguments: Arguments) -> str | None:
    """Why `text`, `template` filled in, would be an option the configuration did not write;
    None when it would not.

    An element may start with "-" where the configuration wrote the option: its text before
    the first placeholder holds more than dashes (`--exclude={{x}}`, `-n{{count}}`), or is
    dashes followed by what the arguments give, not by another dash (`-{{flags}}` with
    `rf`, never `-files0-from=...` turning it into a long option).
    """
    if not text.startswith("-"):
        return None
    first = PLACEHOLDER.search(template)
    prefix = template if first is None else template[: first.start()]
    if prefix.lstrip("-") or (prefix and not text[len(prefix) :].startswith("-")):
        return None
    leading = _leading_argument(template[len(prefix) :], arguments)
    if leading is not None and as_text(arguments[leading]).startswith("-"):
        return f'argument "{leading}" starts with "-", which the command could take as an option'
    return (
        f'the arguments make "{template}" start with "-" ({text[:40]}), which the command could '
        "take as an option"
    )


def _leading_argument(template: str, arguments: Arguments) -> str | None:
    """The argument whose value starts the filled template, if a value does."""
    position = 0
    while match := PLACEHOLDER.match(template, position):
        name = match.group(1)
        if name in arguments and as_text(arguments[name]):
            return name
        position = match.end()
    return None


def command_line(command: str, args: Sequence[str], arguments: Arguments) -> list[str]:
    """The argv of a command tool: each template of `args` becomes at most one element.

    An element that is exactly the placeholder of an absent argument is left out. A value
    starting with "-" at the start of an element could pass as an option (`--exec=...`),
    so it is refused unless a literal "--" earlier in `args` ended the options, and only
    if nothing before that "--" comes from the arguments: an option before it whose value
    is left out or empty (`--exclude {{x}}`, `-e{{pattern}}`), or made by them
    (`-{{flags}}` with `e`), would take the "--" as its value.
    """
    argv = [command]
    options_ended = False
    from_arguments = False
    for template in args:
        if template == END_OF_OPTIONS:
            options_ended = options_ended or not from_arguments
            argv.append(template)
            continue
        from_arguments = from_arguments or PLACEHOLDER.search(template) is not None
        whole = whole_placeholder(template)
        if whole is not None and whole not in arguments:
            continue
        text = fill(template, arguments, _no_nul)
        if not options_ended and (refusal := _smuggled_option(template, text, arguments)):
            raise ArgumentRefused(refusal)
        argv.append(text)
    return argv


def environment(
    configured: Mapping[str, str | SecretStr], arguments: Arguments, secrets: list[str]
) -> dict[str, str]:
    """The tool's own variables, filled in; revealed secret values are added to `secrets`."""
    env: dict[str, str] = {}
    for name, value in configured.items():
        if isinstance(value, SecretStr):
            revealed = value.get_secret_value()
            secrets.append(revealed)
            env[name] = revealed
            continue
        whole = whole_placeholder(value)
        if whole is not None and whole not in arguments:
            continue
        env[name] = fill(value, arguments, _no_nul)
    return env


def _url_component(name: str, text: str) -> str:
    # Nothing is safe: a value cannot add a path segment, a query parameter or a fragment.
    return quote(text, safe="")


def _path_component(name: str, text: str) -> str:
    # "." and ".." are dot segments, which URL normalisation resolves; a server behind may
    # decode "%2E%2E", "%2F" or "%5C" and resolve them too, so that the request would reach
    # another endpoint: no encoding of them is safe, in the value or in any part of it.
    if text and text.strip(".") == "":
        raise ArgumentRefused(f'argument "{name}" is only dots, which would name another path')
    if any(part and part.strip(".") == "" for part in text.replace("\\", "/").split("/")):
        raise ArgumentRefused(f'argument "{name}" holds a "." or ".." segment, which would name another path')
    return _url_component(name, text)


def http_url(template: str, arguments: Arguments) -> str:
    """The URL of an HTTP tool, with argument values percent-encoded into it.

    A value made only of dots is refused in the path, where it would be a dot segment.
    """
    path, question, query = template.partition("?")
    url = fill(path, arguments, _path_component) + question + fill(query, arguments, _url_component)
    before, after = urlsplit(template), urlsplit(url)
    # The loader keeps placeholders out of the scheme and host; this holds even if it did not.
    if (before.scheme, before.netloc) != (after.scheme, after.netloc):
        raise ArgumentRefused("the arguments would change the server the tool calls")
    return url


def _header_value(name: str, text: str) -> str:
    if any(character in text for character in "\r\n\0"):
        raise ArgumentRefused(f'argument "{name}" contains a line break, which a header cannot hold')
    if not all(character == "\t" or " " <= character <= "~" for character in text):
        raise ArgumentRefused(
            f'argument "{name}" contains a character other than printable ASCII, which a header cannot hold'
        )
    return text


def http_headers(
    configured: Mapping[str, str | SecretStr], arguments: Arguments, secrets: list[str]
) -> dict[str, str]:
    """The configured headers, filled in; revealed secret values are added to `secrets`."""
    headers: dict[str, str] = {}
    for name, value in configured.items():
        if isinstance(value, SecretStr):
            revealed = value.get_secret_value()
            secrets.append(revealed)
            headers[name] = revealed
        else:
            headers[name] = fill(value, arguments, _header_value)
    return headers


_ABSENT: Final = object()


def json_body(template: Any, arguments: Arguments) -> Any:
    """A JSON body template filled in: "{{name}}" alone becomes the argument's JSON value.

    A member or item that is exactly the placeholder of an absent argument is left out
    (a body made of one such placeholder is null); keys are literal.
    """
    filled = _fill_json(template, arguments)
    return None if filled is _ABSENT else filled


def _fill_json(template: Any, arguments: Arguments) -> Any:
    if isinstance(template, str):
        whole = whole_placeholder(template)
        if whole is not None:
            return arguments.get(whole, _ABSENT)
        return fill(template, arguments)
    if isinstance(template, list):
        items = (_fill_json(item, arguments) for item in template)
        return [item for item in items if item is not _ABSENT]
    if isinstance(template, dict):
        members = ((key, _fill_json(item, arguments)) for key, item in template.items())
        return {key: item for key, item in members if item is not _ABSENT}
    return template

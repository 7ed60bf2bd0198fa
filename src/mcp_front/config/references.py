"""References in the raw configuration, and the per-request templates they can stand for.

A configuration value can be a reference object instead of a literal:

- `{"$env": "VAR"}`: the value of an environment variable, read at load time;
- `{"$file": "path"}`: the contents of a file (one trailing newline dropped), read at load
  time; a relative path is taken from the folder of the configuration file;
- `{"$userToken": "Bearer {{token}}"}`: a template rendered on each request with the
  signed-in user's own token for the service; only in a server's args, env, url and headers.

`resolve_references` replaces them in one pass over the raw document, before the models
see it, and collects every problem with its key path instead of stopping at the first.
Values read from `$env` and `$file` come out as `SecretStr`: the models keep them secret
where the field can hold a credential and reveal them where it cannot (a URL, a command).

Strings in a server's args and env can also carry per-caller placeholders,
`{{principal.subject}}` and `{{principal.email}}`, which the stdio backend fills in when it
starts the caller's process.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, SecretStr
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from mcp_front.config.errors import ConfigIssue, KeyPath, config_value_error, format_path

USER_TOKEN_PLACEHOLDER: Final = "{{token}}"  # noqa: S105 - a template marker, not a credential

ENV_REFERENCE: Final = "$env"
FILE_REFERENCE: Final = "$file"
USER_TOKEN_REFERENCE: Final = "$userToken"  # noqa: S105 - a key name, not a credential
_REFERENCE_KEYS: Final = (ENV_REFERENCE, FILE_REFERENCE, USER_TOKEN_REFERENCE)


@dataclass(frozen=True, slots=True)
class UserTokenTemplate:
    """A value that is only known per request: `template` with `{{token}}` standing for the
    signed-in user's own token for the service (from the credential vault)."""

    template: str

    def __post_init__(self) -> None:
        if USER_TOKEN_PLACEHOLDER not in self.template:
            raise ValueError(f"a $userToken template must contain {USER_TOKEN_PLACEHOLDER}")

    def render(self, token: str) -> str:
        """The value to hand to the backend for a user whose token is `token`."""
        return self.template.replace(USER_TOKEN_PLACEHOLDER, token)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Serialised to JSON as the reference it was written as, so a dumped configuration
        # reads back to the same models.
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: {USER_TOKEN_REFERENCE: value.template}, when_used="json"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "object",
            "properties": {
                USER_TOKEN_REFERENCE: {"type": "string", "pattern": re.escape(USER_TOKEN_PLACEHOLDER)}
            },
            "required": [USER_TOKEN_REFERENCE],
            "additionalProperties": False,
        }

    @classmethod
    def _validate(cls, value: object) -> UserTokenTemplate:
        if isinstance(value, UserTokenTemplate):
            return value
        if isinstance(value, Mapping) and set(value) == {USER_TOKEN_REFERENCE}:
            template = value[USER_TOKEN_REFERENCE]
            if isinstance(template, str) and USER_TOKEN_PLACEHOLDER in template:
                return cls(template)
        raise config_value_error(
            "user_token_template",
            f'expected a {{"{USER_TOKEN_REFERENCE}": "...{USER_TOKEN_PLACEHOLDER}..."}} reference',
        )


PRINCIPAL_PLACEHOLDERS: Final = ("email", "subject")
"""The names `<name>` of the `{{principal.<name>}}` placeholders allowed in a server's args and env."""

_PRINCIPAL_PLACEHOLDER: Final = re.compile(r"\{\{principal\.(email|subject)\}\}")
# Looser than the real thing, to catch misspellings: `{{ principal.mail }}`.
_PRINCIPAL_PLACEHOLDER_LIKE: Final = re.compile(r"\{\{\s*principal\.\w*\s*\}\}")


def invalid_principal_placeholders(text: str) -> list[str]:
    """The `{{principal...}}` placeholders in `text` that would not be filled in."""
    return [
        match.group()
        for match in _PRINCIPAL_PLACEHOLDER_LIKE.finditer(text)
        if not _PRINCIPAL_PLACEHOLDER.fullmatch(match.group())
    ]


def render_principal_placeholders(text: str, *, subject: str, email: str | None) -> str:
    """Fill in `{{principal.subject}}` and `{{principal.email}}` for one caller.

    A caller without an email address (a static service credential) gets an empty string.
    """
    values = {"subject": subject, "email": email or ""}
    return _PRINCIPAL_PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


@dataclass(frozen=True, slots=True)
class ResolvedReferences:
    """The raw configuration with every reference replaced, and what went wrong doing it.

    `secret_paths` are the locations whose value came from `$env` or `$file`; error reports
    never quote a value found there. `unresolved_paths` are the locations whose reference
    failed (they hold a placeholder, so problems the models find there are noise).
    """

    document: dict[str, Any]
    issues: tuple[ConfigIssue, ...]
    secret_paths: frozenset[KeyPath]
    unresolved_paths: frozenset[KeyPath]
    files: frozenset[Path] = frozenset()
    """The files `$file` references read (absolute), which hold the configuration's secrets."""


def resolve_references(
    document: Mapping[str, Any], *, environ: Mapping[str, str], base_dir: Path
) -> ResolvedReferences:
    """Replace the `$env`, `$file` and `$userToken` references of a raw configuration."""
    resolver = _ReferenceResolver(environ=environ, base_dir=base_dir)
    resolved = resolver.resolve(dict(document), ())
    return ResolvedReferences(
        document=resolved,
        issues=tuple(resolver.issues),
        secret_paths=frozenset(resolver.secret_paths),
        unresolved_paths=frozenset(resolver.unresolved_paths),
        files=frozenset(resolver.files),
    )


# Stands in for a reference that could not be resolved, so validation can still look at
# the rest of the document; the problems it causes are dropped from the report.
_UNRESOLVED: Final = SecretStr("")


class _ReferenceResolver:
    def __init__(self, *, environ: Mapping[str, str], base_dir: Path) -> None:
        self.environ = environ
        self.base_dir = base_dir
        self.issues: list[ConfigIssue] = []
        self.secret_paths: set[KeyPath] = set()
        self.files: set[Path] = set()
        self.unresolved_paths: set[KeyPath] = set()

    def resolve(self, value: Any, path: KeyPath) -> Any:
        if isinstance(value, Mapping):
            if any(key in value for key in _REFERENCE_KEYS):
                return self._resolve_reference(value, path)
            if misspelled := _misspelled_reference(value):
                return self._fail(
                    path, f'unknown reference "{misspelled[0]}"', f'did you mean "{misspelled[1]}"?'
                )
            return {key: self.resolve(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item, (*path, index)) for index, item in enumerate(value)]
        return value

    def _resolve_reference(self, reference: Mapping[str, Any], path: KeyPath) -> Any:
        kind = next(key for key in _REFERENCE_KEYS if key in reference)
        if len(reference) > 1:
            others = ", ".join(f'"{key}"' for key in reference if key != kind)
            return self._fail(path, f'a "{kind}" reference cannot have other keys ({others})', "remove them")
        argument = reference[kind]
        if kind == ENV_REFERENCE:
            return self._read_environment(argument, path)
        if kind == FILE_REFERENCE:
            return self._read_file(argument, path)
        return self._user_token_template(argument, path)

    def _read_environment(self, name: object, path: KeyPath) -> Any:
        if not isinstance(name, str) or not name:
            return self._fail(path, f'"{ENV_REFERENCE}" needs a variable name', '{"$env": "VARIABLE_NAME"}')
        value = self.environ.get(name)
        if value is None:
            return self._fail(
                path, f"environment variable {name} is not set", f"set {name} where mcp-front runs"
            )
        if not value:
            return self._fail(path, f"environment variable {name} is empty", f"give {name} a value")
        return self._secret(_strip_matching_quotes(value), path)

    def _read_file(self, name: object, path: KeyPath) -> Any:
        if not isinstance(name, str) or not name:
            return self._fail(
                path, f'"{FILE_REFERENCE}" needs a file path', '{"$file": "/run/secrets/token"}'
            )
        file = Path(name).expanduser()
        if not file.is_absolute():
            file = self.base_dir / file
        self.files.add(file.absolute())
        try:
            contents = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self._fail(path, f"file {file} does not exist")
        except UnicodeDecodeError:
            return self._fail(path, f"file {file} is not UTF-8 text")
        except OSError as error:
            return self._fail(path, f"cannot read file {file}: {error.strerror or type(error).__name__}")
        contents = _without_trailing_newline(contents)
        if not contents:
            return self._fail(path, f"file {file} is empty")
        return self._secret(contents, path)

    def _user_token_template(self, template: object, path: KeyPath) -> Any:
        if not _may_hold_user_token(path):
            return self._fail(
                path,
                f'"{USER_TOKEN_REFERENCE}" is only allowed in a server\'s args, env, url and headers',
                "use a literal value, $env or $file here",
            )
        if not isinstance(template, str) or USER_TOKEN_PLACEHOLDER not in template:
            return self._fail(
                path,
                f'a "{USER_TOKEN_REFERENCE}" template must contain {USER_TOKEN_PLACEHOLDER}',
                f'for example {{"{USER_TOKEN_REFERENCE}": "Bearer {USER_TOKEN_PLACEHOLDER}"}}',
            )
        return UserTokenTemplate(template)

    def _secret(self, value: str, path: KeyPath) -> SecretStr:
        self.secret_paths.add(path)
        return SecretStr(value)

    def _fail(self, path: KeyPath, message: str, fix: str | None = None) -> SecretStr:
        self.issues.append(ConfigIssue(format_path(path), message, fix))
        self.unresolved_paths.add(path)
        return _UNRESOLVED


def _may_hold_user_token(path: KeyPath) -> bool:
    """Whether `path` is a server's url, or an item of its args, env or headers."""
    match path:
        case ("mcpServers", str(), "url"):
            return True
        case ("mcpServers", str(), "args", int()) | ("mcpServers", str(), "env" | "headers", str()):
            return True
    return False


def _misspelled_reference(value: Mapping[str, Any]) -> tuple[str, str] | None:
    """For a one-key object like `{"$ENV": "X"}`, the key and the reference it resembles.

    Only `$`-keys close to a known reference count: JSON Schemas in inline tools
    legitimately use `$ref`, `$schema` and `$defs`.
    """
    if len(value) != 1:
        return None
    (key,) = value
    if not isinstance(key, str) or not key.startswith("$"):
        return None
    by_lowercase = {reference.lower(): reference for reference in _REFERENCE_KEYS}
    if key.lower() in by_lowercase:
        return key, by_lowercase[key.lower()]
    close = difflib.get_close_matches(key, _REFERENCE_KEYS, n=1, cutoff=0.75)
    return (key, close[0]) if close else None


def _without_trailing_newline(text: str) -> str:
    # Editors end files with a newline that is never part of the secret.
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def _strip_matching_quotes(value: str) -> str:
    # Kept from the Go mcp-front: `docker run --env-file` passes quotes through, so
    # `TOKEN="abc"` in an env file would otherwise arrive with its quotes.
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value

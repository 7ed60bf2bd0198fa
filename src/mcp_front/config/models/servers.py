"""One `mcpServers` entry: a backend MCP server, or an aggregate of several."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Final, Literal, TypeAlias, TypeVar

from pydantic import AfterValidator, Field, SecretStr, model_validator

from mcp_front.config.durations import PositiveDuration
from mcp_front.config.errors import KeyPath, config_value_error
from mcp_front.config.models._base import ConfigModel, Problem, json_key, raise_problems
from mcp_front.config.models.inline import InlineConfig
from mcp_front.config.models.limits import RateLimitRule
from mcp_front.config.models.policy import ServicePolicy
from mcp_front.config.models.sandbox import SandboxConfig
from mcp_front.config.models.service_auth import ServiceAuth
from mcp_front.config.models.user_auth import UserAuthentication
from mcp_front.config.models.values import check_http_url
from mcp_front.config.references import (
    PRINCIPAL_PLACEHOLDERS,
    UserTokenTemplate,
    invalid_principal_placeholders,
)

TransportType: TypeAlias = Literal["stdio", "sse", "streamable-http", "inline"]
BackendKind: TypeAlias = Literal["stdio", "sse", "streamable-http", "inline", "aggregate"]

_DELIMITER: Final = re.compile(r"[A-Za-z0-9_.-]+")

# Which keys belong to which transport, to catch a `url` left on a stdio server and the like.
_TRANSPORT_FIELDS: Final[dict[str, frozenset[str]]] = {
    "stdio": frozenset({"command", "args", "env", "cwd", "startup_timeout", "sandbox"}),
    "sse": frozenset({"url", "headers"}),
    "streamable-http": frozenset({"url", "headers"}),
    "inline": frozenset({"inline", "sandbox"}),
}
_AGGREGATE_FIELDS: Final = frozenset({"servers", "discovery", "delimiter"})
_DIRECT_FIELDS: Final = frozenset().union(
    *_TRANSPORT_FIELDS.values(), {"timeout", "requires_user_token", "user_authentication"}
)


_Value = TypeVar("_Value", str, SecretStr, UserTokenTemplate)


def _check_principal_placeholders(value: _Value) -> _Value:
    text = value.template if isinstance(value, UserTokenTemplate) else value
    # A value read from $env or $file is taken literally: it is never a template.
    if isinstance(text, str) and (invalid := invalid_principal_placeholders(text)):
        known = " or ".join(f"{{{{principal.{name}}}}}" for name in PRINCIPAL_PLACEHOLDERS)
        raise config_value_error(
            "principal_placeholder", f"unknown placeholder {invalid[0]}", fix=f"use {known}"
        )
    return value


Argument = Annotated[str | UserTokenTemplate, AfterValidator(_check_principal_placeholders)]
EnvironmentValue = Annotated[
    str | SecretStr | UserTokenTemplate, AfterValidator(_check_principal_placeholders)
]
HeaderValue: TypeAlias = str | SecretStr | UserTokenTemplate


class ToolFilter(ConfigModel):
    """Which of a server's tools clients see: only the listed ones, or all but them."""

    mode: Literal["allow", "block"]
    """`"allow"`: clients see only the listed tools; `"block"`: all but them."""
    tools: list[str] = Field(default_factory=list, alias="list", examples=[["search", "fetch"]])
    """The tools the filter names."""

    def permits(self, tool: str) -> bool:
        """Whether clients may see and call `tool`."""
        return (tool in self.tools) == (self.mode == "allow")


class ServerOptions(ConfigModel):
    """A server's `options`: which of its tools clients see, and the Go mcp-front's options."""

    tool_filter: ToolFilter | None = None
    """Which of the server's tools clients may list and call."""
    log_enabled: bool | None = None
    """Go mcp-front only: read and ignored, with a warning (every request is logged here;
    choose how much with `serve --log-level`)."""
    auth_tokens: list[SecretStr] = Field(default_factory=list)
    """Go mcp-front only, where they protect nothing either: read and ignored, with a warning
    (put tokens that should let callers in into `serviceAuths`)."""


class DiscoveryConfig(ConfigModel):
    """How an aggregate server collects its services' tools."""

    timeout: PositiveDuration = timedelta(seconds=10)
    """How long to wait for slow services; the tools found by then are listed."""
    cache_ttl: PositiveDuration = timedelta(seconds=60)
    """How long a session reuses a complete combined list; a member's `list_changed` ends it sooner."""
    max_conns_per_user: int = Field(default=0, ge=0)
    """Backend connections one user may hold; 0 for no limit."""


class ServerConfig(ConfigModel):
    """A service: a backend MCP server (`"type": "direct"`) or an aggregate of services."""

    transport_type: TransportType | None = None
    """How to reach the backend; required unless `type` is "aggregate"."""
    type: Literal["direct", "aggregate"] = "direct"
    """`"direct"`: a backend MCP server; `"aggregate"`: several services behind one endpoint."""
    command: str | None = Field(default=None, min_length=1, examples=["npx"])
    """The program to run (required)."""
    args: list[Argument] = Field(default_factory=list)
    """Its arguments; may hold `$userToken` references and `{{principal.subject}}`/`{{principal.email}}`
    placeholders."""
    env: dict[str, EnvironmentValue] = Field(default_factory=dict)
    """Environment variables given to the process; values as in `args`, or secrets."""
    cwd: str | None = Field(default=None, min_length=1)
    """The folder the process runs in; by default the gateway's."""
    url: str | UserTokenTemplate | None = Field(default=None, examples=["http://localhost:3000/sse"])
    """The server's http(s) URL, required (its SSE endpoint for `sse`); may be a `$userToken` reference."""
    headers: dict[str, HeaderValue] = Field(default_factory=dict)
    """Headers sent with every request to the server; values may be secrets or `$userToken` references."""
    timeout: PositiveDuration | None = None
    """How long one request to the backend may take; without it, no limit."""
    startup_timeout: PositiveDuration = timedelta(seconds=60)
    """How long a stdio process has to answer `initialize` before it counts as failed."""
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    """How each stdio process, or each run of an inline command tool, is confined; sandboxed by default."""
    options: ServerOptions = Field(default_factory=ServerOptions)
    """Which of the server's tools clients see, and the Go mcp-front's per-server options."""
    service_auths: list[ServiceAuth] = Field(default_factory=list)
    """Static credentials that let clients in without signing in (a CI job, a script); each entry stands for
    one caller."""
    policy: ServicePolicy | None = None
    """Who may use the service and which of its tools; without it, every authenticated caller."""
    rate_limit: RateLimitRule | None = None
    """Each caller's requests to this service, in place of `proxy.rateLimits.mcpRequests`;
    `null` turns the limit off for this service. Unset: the proxy's limit."""
    requires_user_token: bool = False
    """Each user needs their own credential for the service, given once on the gateway's `/my/tokens` page;
    needs `proxy.auth` and `userAuthentication`."""
    user_authentication: UserAuthentication | None = None
    """How users give the gateway their own credential for the service."""
    inline: InlineConfig | None = None
    """The tools the gateway itself serves for this service (required)."""
    servers: list[str] = Field(default_factory=list, examples=[["postgres", "linear"]])
    """Aggregate only: the services combined."""
    delimiter: str = "."
    """Aggregate only: what joins a service's name to its tools' names ("linear.create_issue")."""
    discovery: DiscoveryConfig | None = None
    """Aggregate only: how the services' tools are collected."""

    @property
    def backend_kind(self) -> BackendKind:
        """Which kind of backend serves the service: an aggregate, or how its server is reached."""
        return "aggregate" if self.type == "aggregate" else self.transport_type or "stdio"

    @property
    def runs_processes(self) -> bool:
        """Whether the gateway itself runs the service's programs (a stdio server, inline
        command tools): the services `sandbox` confines."""
        return self.backend_kind in ("stdio", "inline")

    def _user_token_templates(self) -> Iterator[tuple[KeyPath, UserTokenTemplate]]:
        """Every `$userToken` value, with its JSON key path within this server."""
        if isinstance(self.url, UserTokenTemplate):
            yield ("url",), self.url
        for index, argument in enumerate(self.args):
            if isinstance(argument, UserTokenTemplate):
                yield ("args", index), argument
        for key, values in (("env", self.env), ("headers", self.headers)):
            for name, value in values.items():
                if isinstance(value, UserTokenTemplate):
                    yield (key, name), value

    @model_validator(mode="after")
    def _is_consistent(self) -> ServerConfig:
        problems = self._aggregate_problems() if self.type == "aggregate" else self._direct_problems()
        raise_problems(self, [*problems, *self._user_token_problems()])
        return self

    def _direct_problems(self) -> Iterator[Problem]:
        if self.transport_type is None:
            yield Problem(
                ("transportType",),
                "missing required key",
                fix='add "transportType": one of "stdio", "sse", "streamable-http", "inline"',
            )
            return
        transport = self.transport_type
        if transport == "stdio" and self.command is None:
            yield Problem(("command",), 'is required with "transportType": "stdio"', fix='for example "npx"')
        if transport in {"sse", "streamable-http"}:
            yield from self._url_problems(transport)
        if transport == "inline" and self.inline is None:
            yield Problem(
                ("inline",), 'is required with "transportType": "inline"', fix='add {"tools": [...]}'
            )
        for field in sorted(self._customized_fields() - _TRANSPORT_FIELDS[transport]):
            users = [name for name, fields in _TRANSPORT_FIELDS.items() if field in fields]
            if users:
                wanted = " or ".join(f'"{name}"' for name in users)
                yield Problem((json_key(ServerConfig, field),), f"is only used with transportType {wanted}")
        for field in sorted(self._customized_fields() & _AGGREGATE_FIELDS):
            yield Problem(
                (json_key(ServerConfig, field),),
                "is only used by aggregate servers",
                fix='remove it, or set "type": "aggregate"',
            )
        if self.requires_user_token and self.user_authentication is None:
            yield Problem(
                ("userAuthentication",),
                'is required with "requiresUserToken": true',
                fix='describe how users get their token: {"type": "manual", ...} or {"type": "oauth", ...}',
            )
        if self.user_authentication is not None and not self.requires_user_token:
            yield Problem(("userAuthentication",), 'is only used with "requiresUserToken": true')
        hosted = self.user_authentication is not None and self.user_authentication.type == "mcp-oauth"
        if hosted and transport not in {"sse", "streamable-http"}:
            yield Problem(
                ("userAuthentication", "type"),
                '"mcp-oauth" is for hosted MCP servers reached over HTTP',
                fix='use "oauth" or "manual", or "transportType": "streamable-http" with the server\'s url',
            )
        if hosted and isinstance(self.url, UserTokenTemplate):
            yield Problem(
                ("url",), 'cannot hold $userToken with "mcp-oauth": the gateway must reach it without one'
            )
        sandbox = self.sandbox
        unsandboxed = transport == "stdio" and not sandbox.enabled
        if unsandboxed and self.requires_user_token and not sandbox.allow_unsandboxed_credentials:
            yield Problem(
                ("sandbox", "enabled"),
                "cannot be false on a service that holds users' credentials: any process of the "
                "gateway's user could read them",
                fix='keep the sandbox, or accept the risk with "allowUnsandboxedCredentials": true',
            )

    def _url_problems(self, transport: str) -> Iterator[Problem]:
        if self.url is None:
            yield Problem(
                ("url",),
                f'is required with "transportType": "{transport}"',
                fix='for example "http://localhost:3000/sse"',
            )
            return
        # A template is checked as the URL it becomes, whatever the user's token.
        url = self.url.render("token") if isinstance(self.url, UserTokenTemplate) else self.url
        try:
            check_http_url(url)
        except ValueError:
            yield Problem(
                ("url",),
                "must be an absolute http:// or https:// URL",
                fix='for example "http://localhost:3000/sse"',
                value=self.url,
                show_value=isinstance(self.url, str),
            )

    def _aggregate_problems(self) -> Iterator[Problem]:
        if not self.servers:
            yield Problem(
                ("servers",),
                "an aggregate server needs the services it combines",
                fix='add "servers": ["service-a", "service-b"]',
            )
        for index, name in enumerate(self.servers):
            if name in self.servers[:index]:
                yield Problem(("servers", index), f'"{name}" is listed twice')
        if self.transport_type not in {None, "sse", "streamable-http"}:
            yield Problem(
                ("transportType",), "an aggregate server is not a stdio or inline backend", fix="remove it"
            )
        for field in sorted(self._customized_fields() & _DIRECT_FIELDS):
            yield Problem(
                (json_key(ServerConfig, field),), "is not used by aggregate servers", fix="remove it"
            )
        if not _DELIMITER.fullmatch(self.delimiter):
            yield Problem(
                ("delimiter",),
                "may only use letters, digits, '_', '-' and '.', as it goes into tool names",
                value=self.delimiter,
                show_value=True,
            )

    def _user_token_problems(self) -> Iterator[Problem]:
        if self.requires_user_token:
            return
        for location, _ in self._user_token_templates():
            yield Problem(
                location,
                '$userToken needs "requiresUserToken": true on this server',
                fix='add "requiresUserToken": true and a "userAuthentication" block',
            )

"""The whole configuration: the gateway, and the services it fronts."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Final

from pydantic import AfterValidator, Field, PrivateAttr, model_validator

from mcp_front.config.errors import config_value_error
from mcp_front.config.models._base import ConfigModel, Problem, raise_problems
from mcp_front.config.models.proxy import ProxyConfig
from mcp_front.config.models.sandbox import binds_inside_writable_paths
from mcp_front.config.models.servers import ServerConfig
from mcp_front.config.models.service_auth import BearerServiceAuth, ServiceAuth

RESERVED_SERVICE_NAMES: Final = frozenset(
    {
        ".well-known",
        "admin",
        "api",
        "authorize",
        "callback",
        "consent",
        "health",
        "jwks",
        "login",
        "logout",
        "metrics",
        "my",
        "oauth",
        "ready",
        "register",
        "revoke",
        "static",
        "token",
    }
)
"""Names a service cannot have, because the gateway serves its own pages at `/<name>`."""

_SERVICE_NAME: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")


def check_service_name(name: str) -> str:
    """Accept a name usable as the service's path segment, `/<name>/mcp`."""
    if name.lower() in RESERVED_SERVICE_NAMES:
        raise config_value_error(
            "service_name",
            f"is a reserved name: the gateway serves its own pages at /{name.lower()}",
            fix=f'rename the service, e.g. "{name}-mcp"',
        )
    if not _SERVICE_NAME.fullmatch(name):
        raise config_value_error(
            "service_name",
            'is not a valid service name: use letters, digits, "_" and "-", starting with a letter or digit',
            fix=f'rename the service, e.g. "{_suggest_service_name(name)}"',
        )
    return name


ServiceName = Annotated[str, AfterValidator(check_service_name)]


class GatewayConfig(ConfigModel):
    """The configuration file as a whole: `version`, `proxy` and `mcpServers`."""

    version: str | None = Field(default=None, examples=["v0.0.1-DEV_EDITION_EXPECT_CHANGES"])
    """Kept for compatibility with the Go mcp-front's files; not interpreted."""
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    """The gateway itself: its addresses, sessions, sign-in and limits."""
    mcp_servers: dict[ServiceName, ServerConfig] = Field(default_factory=dict)
    """The services, by name; each is served at `<baseURL>/<name>/`."""
    _files: tuple[Path, ...] = PrivateAttr(default=())

    @property
    def files(self) -> tuple[Path, ...]:
        """The files the configuration was read from: its own and those its `$file`
        references read (absolute). They hold its secrets, so sandboxed children never see them."""
        return self._files

    def read_from(self, files: Iterable[Path]) -> GatewayConfig:
        """This configuration, remembering that it was read from `files`."""
        self._files = tuple(files)
        return self

    def __eq__(self, other: object) -> bool:
        # Where a configuration was read from is not part of what it says.
        if not isinstance(other, GatewayConfig):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = ConfigModel.__hash__

    @model_validator(mode="after")
    def _services_fit_together(self) -> GatewayConfig:
        raise_problems(
            self, [*self._aggregate_problems(), *self._user_token_problems(), *self._sandbox_problems()]
        )
        return self

    def _sandbox_problems(self) -> Iterator[Problem]:
        confined = {
            name: (server.sandbox, server.cwd)
            for name, server in self.mcp_servers.items()
            if server.runs_processes and server.sandbox.enabled
        }
        return binds_inside_writable_paths(confined)

    def _aggregate_problems(self) -> Iterator[Problem]:
        combinable = sorted(name for name, server in self.mcp_servers.items() if server.type == "direct")
        for name, server in self.mcp_servers.items():
            for index, member in enumerate(server.servers if server.type == "aggregate" else []):
                location = ("mcpServers", name, "servers", index)
                if member == name:
                    yield Problem(location, "an aggregate server cannot include itself", fix="remove it")
                elif member not in self.mcp_servers:
                    close = difflib.get_close_matches(member, combinable, n=1)
                    yield Problem(
                        location,
                        f'there is no service named "{member}"',
                        fix=f'did you mean "{close[0]}"?'
                        if close
                        else f"use one of: {', '.join(combinable)}",
                    )
                elif self.mcp_servers[member].type == "aggregate":
                    yield Problem(
                        location, f'"{member}" is an aggregate server itself; aggregates do not nest'
                    )
                elif not self._admits_some_caller(server, self.mcp_servers[member]):
                    yield Problem(
                        location,
                        f'"{member}" would refuse every caller of this aggregate: none of the '
                        "credentials this aggregate accepts is one of its serviceAuths",
                        fix=f'give "{member}" one of the aggregate\'s serviceAuths (the same token, '
                        'or the same "user"), or sign users in with proxy.auth',
                    )

    def _admits_some_caller(self, aggregate: ServerConfig, member: ServerConfig) -> bool:
        """Whether `member`'s own guard would let in at least one caller `aggregate`'s lets in."""
        if not member.service_auths or self.proxy.auth is not None:
            return True  # an open member, or signed-in users, whom every service takes
        return bool(_credential_names(aggregate.service_auths) & _credential_names(member.service_auths))

    def _user_token_problems(self) -> Iterator[Problem]:
        if self.proxy.auth is not None:
            return
        for name, server in self.mcp_servers.items():
            if server.requires_user_token:
                yield Problem(
                    ("mcpServers", name, "requiresUserToken"),
                    "users' own tokens need users to sign in",
                    fix='configure "proxy.auth", or remove "requiresUserToken"',
                )


def _credential_names(auths: Iterable[ServiceAuth]) -> set[tuple[str, ...]]:
    """What identifies each credential across services: its secret, and its `user`."""
    names: set[tuple[str, ...]] = set()
    for auth in auths:
        if auth.user:
            names.add(("user", auth.user))
        if isinstance(auth, BearerServiceAuth):
            names.update(("bearer", token.get_secret_value()) for token in auth.tokens)
        else:
            names.add(("basic", auth.username, auth.password.get_secret_value()))
    return names


def _suggest_service_name(name: str) -> str:
    cleaned = re.sub(r"[^a-zA-Z0-9_-]+", "-", name).strip("-_")
    return cleaned or "my-service"

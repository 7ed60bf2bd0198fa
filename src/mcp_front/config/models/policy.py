"""Who may use a service and call its tools (`policy`), and where calls are recorded (`proxy.audit`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from mcp_front.config.errors import config_value_error
from mcp_front.config.models._base import ConfigModel, Problem, raise_problems

_RULE_KEYS = '"allowedUsers", "allowedGroups" or "allowedDomains"'


def _check_user(value: str) -> str:
    value = value.strip()
    if not value:
        raise config_value_error("policy_user", "must not be empty", fix="an email address or a user name")
    return value


def _check_group(value: str) -> str:
    if not value.strip():
        raise config_value_error("policy_group", "must not be empty", fix="a group name, as the IdP sends it")
    return value


def _check_domain(value: str) -> str:
    domain = value.strip().lower()
    if domain.startswith("@"):
        raise config_value_error(
            "policy_domain", "is a domain, written without '@'", fix='for example "example.com"'
        )
    if not domain or "@" in domain or "/" in domain or " " in domain:
        raise config_value_error("policy_domain", "must be an email domain", fix='for example "example.com"')
    return domain


User = Annotated[str, AfterValidator(_check_user)]
Group = Annotated[str, AfterValidator(_check_group)]
Domain = Annotated[str, AfterValidator(_check_domain)]


class PolicyRule(ConfigModel):
    """Who a rule lets in: anyone matching at least one of the lists it gives.

    Users match a signed-in user's email (case-insensitively), or a `serviceAuths`
    credential's `user`; groups match the IdP's group claim exactly.
    """

    allowed_users: list[User] = Field(default_factory=list, examples=[["alice@example.com"]])
    """Users let in: an email address (case-insensitively), or a `serviceAuths` credential's `user`."""
    allowed_groups: list[Group] = Field(default_factory=list, examples=[["eng"]])
    """Groups let in, as the identity provider's groups claim names them (compared exactly)."""
    allowed_domains: list[Domain] = Field(default_factory=list, examples=[["example.com"]])
    """Email domains let in, written without `@`."""

    @property
    def restricts(self) -> bool:
        """Whether the rule names anyone; a rule naming nobody restricts nothing."""
        return bool(self.allowed_users or self.allowed_groups or self.allowed_domains)


class ToolPolicy(PolicyRule):
    """A tool's own rule, which a caller must match in addition to the service's."""

    @model_validator(mode="after")
    def _names_someone(self) -> ToolPolicy:
        if not self.restricts:
            # Denying everyone and allowing everyone are both plausible readings of an empty
            # rule; refusing it makes the author say which.
            raise_problems(
                self,
                [
                    Problem(
                        (),
                        "names nobody, so it is unclear who may call this tool",
                        fix=f"list who may call it under {_RULE_KEYS}; to hide it from everyone, "
                        'use "options": {"toolFilter": {"mode": "block", "list": [...]}}',
                    )
                ],
            )
        return self


class ServicePolicy(PolicyRule):
    """A service's `policy`: who may use the service, and per tool who may call it."""

    tools: dict[str, ToolPolicy] = Field(
        default_factory=dict, examples=[{"execute_sql": {"allowedGroups": ["dba"]}}]
    )
    """Per tool, who may call it, on top of the service's own rule."""

    @model_validator(mode="after")
    def _says_something(self) -> ServicePolicy:
        raise_problems(self, self._problems())
        return self

    def _problems(self) -> Iterator[Problem]:
        if not self.restricts and not self.tools:
            yield Problem(
                (),
                "names nobody and no tools, so it is unclear who may use this service",
                fix=f"list who may use it under {_RULE_KEYS}, add per-tool rules under "
                '"tools", or remove "policy" to let every authenticated caller in',
            )
        for name in self.tools:
            if not name.strip():
                yield Problem(("tools",), "has a tool with an empty name", fix="use the tool's name")


def _check_audit_file(value: str) -> str:
    path = Path(value).expanduser()
    if not value.strip() or path.name in ("", ".", ".."):
        raise config_value_error(
            "audit_file", "must be a file path", fix='for example "/var/log/mcp-front/audit.jsonl"'
        )
    if not path.parent.is_dir():
        raise config_value_error(
            "audit_file",
            f"its directory {path.parent} does not exist",
            fix="create the directory, or point the audit log somewhere that exists",
        )
    return str(path)


class AuditConfig(ConfigModel):
    """The `proxy.audit` block: where audit events go.

    Without it, events go to the `mcp_front.audit` logger; with `file`, they are appended
    to that file as JSON lines.
    """

    file: Annotated[str, AfterValidator(_check_audit_file)] | None = Field(
        default=None, examples=["/var/log/mcp-front/audit.jsonl"]
    )
    """A file the events are appended to as JSON lines; its directory must exist. Without it, events go to the
    `mcp_front.audit` logger."""

"""`ServiceAccess`: a service's `policy`, evaluated for one principal at a time.

A principal passes a rule when it matches at least one of the rule's lists: a user
(its email, compared case-insensitively, or its subject), a group, or an email domain.
A tool with a rule of its own needs that rule and the service's; any other tool needs
only the service's. Every decision names the rule behind it, both as the key path to
edit and in words, so a refused caller and the operator reading the log agree on why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mcp_front.auth.principal import Principal
from mcp_front.config import PolicyRule, ServicePolicy
from mcp_front.config.errors import format_path


@dataclass(frozen=True, slots=True)
class AccessDecision:
    allowed: bool
    rule: str | None = None
    """The key path of the deciding rule (`mcpServers.db.policy.tools.execute_sql`);
    `None` when no rule applies."""
    reason: str = "allowed"
    """The rule in words: "only groups dba may call execute_sql"."""


ALLOWED = AccessDecision(True)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule, with names normalised once so each check is a few set lookups."""

    path: str
    users: frozenset[str] = field(default_factory=frozenset)
    """Lower-cased, for matching emails."""
    subjects: frozenset[str] = field(default_factory=frozenset)
    """As written, for matching subjects, which are case-sensitive identifiers."""
    groups: frozenset[str] = field(default_factory=frozenset)
    domains: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, rule: PolicyRule, path: str) -> CompiledRule:
        return cls(
            path=path,
            users=frozenset(user.lower() for user in rule.allowed_users),
            subjects=frozenset(rule.allowed_users),
            groups=frozenset(rule.allowed_groups),
            domains=frozenset(domain.lower() for domain in rule.allowed_domains),
        )

    @property
    def restricts(self) -> bool:
        return bool(self.subjects or self.groups or self.domains)

    def matches(self, principal: Principal) -> bool:
        if not self.restricts:
            return True
        email = (principal.email or "").strip().lower()
        # A signed-in user is matched by email only: an identity provider's subject is
        # an opaque id that could equal the name of a static credential.
        if principal.kind == "service" and principal.subject in self.subjects:
            return True
        if email and email in self.users:
            return True
        if principal.groups & self.groups:
            return True
        return bool(email) and email.rpartition("@")[2] in self.domains

    def describe(self, action: str) -> str:
        """The rule as a sentence: "only users a@x.com or groups dba may <action>"."""
        parts = [
            f"{label} {', '.join(sorted(names))}"
            for label, names in (
                ("users", self.subjects),
                ("groups", self.groups),
                ("domains", self.domains),
            )
            if names
        ]
        return f"only {' or '.join(parts)} may {action}"


@dataclass(frozen=True, slots=True)
class ServiceAccess:
    """Who may use one service and call each of its tools."""

    service: str
    rule: CompiledRule
    tools: Mapping[str, CompiledRule] = field(default_factory=dict)

    @classmethod
    def of(cls, service: str, policy: ServicePolicy | None) -> ServiceAccess:
        """The evaluator of `mcpServers.<service>.policy`; without a policy, everyone passes."""
        base = ("mcpServers", service, "policy")
        if policy is None:
            return cls(service, CompiledRule(format_path(base)))
        return cls(
            service,
            CompiledRule.of(policy, format_path(base)),
            {
                name: CompiledRule.of(rule, format_path((*base, "tools", name)))
                for name, rule in policy.tools.items()
            },
        )

    @property
    def restricts(self) -> bool:
        return self.rule.restricts or bool(self.tools)

    def check_service(self, principal: Principal) -> AccessDecision:
        """Whether `principal` may open a session with the service at all."""
        if self.rule.matches(principal):
            return ALLOWED
        return AccessDecision(False, self.rule.path, self.rule.describe(f"use {self.service}"))

    def check_tool(self, principal: Principal, tool: str) -> AccessDecision:
        """Whether `principal` may see and call `tool`."""
        service = self.check_service(principal)
        if not service.allowed:
            return service
        rule = self.tools.get(tool)
        if rule is None or rule.matches(principal):
            return ALLOWED
        return AccessDecision(False, rule.path, rule.describe(f"call {tool}"))

    def callable_tools(self, principal: Principal, names: Iterable[str]) -> frozenset[str]:
        """Of `names`, those `principal` may call."""
        return frozenset(name for name in names if self.check_tool(principal, name).allowed)

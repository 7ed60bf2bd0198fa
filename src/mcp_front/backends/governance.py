"""The rules a service applies to every session, whatever its backend or protocol era.

Each rule wraps the `Upstream` a backend opens; `Governance.govern` composes them for a
service, outermost first:

- **audit** (`proxy.audit`): every `tools/call` and every refusal, recorded once;
- **policy** (`mcpServers.<name>.policy`): the service rule is checked before the backend
  is opened, so a caller it refuses never costs a process or a connection; tool rules
  narrow `tools/list` to what the principal may call and refuse the rest by name,
  saying which rule refused (the caller may well be entitled to ask for access);
- **tool filter** (`options.toolFilter`): listing and calling are filtered together,
  since a tool hidden from `tools/list` but callable by name would leak exactly what the
  filter withholds; a refused call gets the answer of a tool that does not exist.

The audit sees what the rules under it refuse; the tool filter is innermost so the policy
never reveals a tool the filter hides. An aggregate opens its members through their own
governance, behind `admitted`: the member's guard decides who may use the member, since
the aggregate's guard is not the member's.

A refusal is recognised in the audit by asking the same rules again rather than by
reading the error a layer below returned: a backend that happens to answer with the same
error code cannot make its own failures look like denials.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

import anyio

from mcp_front.audit import AuditEvent, AuditLog, AuditOutcome, arguments_sha256
from mcp_front.auth.principal import Principal
from mcp_front.auth.service_policy import AccessDecision, ServiceAccess
from mcp_front.backends.base import (
    BackendError,
    MessageSink,
    Upstream,
    UpstreamOpener,
    WrappedUpstream,
    called_tool,
    listing_narrowed,
)
from mcp_front.config import ServerConfig, ToolFilter
from mcp_front.config.errors import format_path
from mcp_front.errors import MCPFrontError
from mcp_front.protocol import jsonrpc
from mcp_front.protocol.jsonrpc import Message


class ToolFilteredUpstream(WrappedUpstream):
    """An `Upstream` that offers only the tools `tool_filter` permits."""

    def __init__(self, upstream: Upstream, tool_filter: ToolFilter) -> None:
        super().__init__(upstream)
        self._filter = tool_filter

    async def request(self, message: Message, related: MessageSink) -> Message:
        method = message["method"]
        if method == "tools/call":
            name = called_tool(message)
            if name is None or not self._filter.permits(name):
                return jsonrpc.error_response(message["id"], jsonrpc.INVALID_PARAMS, f"Unknown tool: {name}")
        response = await self.inner.request(message, related)
        if method == "tools/list":
            return listing_narrowed(response, self._filter.permits)
        return response


POLICY_DENIED: Final = -32003
"""Implementation-defined server error: the service's policy refuses this caller or tool.
`error.data.rule` carries the key path of the refusing rule."""


class PolicyDenied(BackendError):
    """The service rule refused a principal a session; the front answers 403."""

    def __init__(self, decision: AccessDecision) -> None:
        super().__init__(f"Forbidden: {decision.reason}", code=POLICY_DENIED, status=403)
        self.decision = decision


def denial_response(request_id: jsonrpc.RequestId, decision: AccessDecision) -> Message:
    """The JSON-RPC error of a refused request, naming the rule in words and by key path."""
    return jsonrpc.error_response(
        request_id, POLICY_DENIED, f"Forbidden: {decision.reason}", data={"rule": decision.rule}
    )


class PolicyUpstream(WrappedUpstream):
    """An `Upstream` that offers `principal` only the tools the policy lets it call."""

    def __init__(self, upstream: Upstream, access: ServiceAccess, principal: Principal) -> None:
        super().__init__(upstream)
        self._access = access
        self._principal = principal

    async def request(self, message: Message, related: MessageSink) -> Message:
        method = message["method"]
        if method == "tools/call":
            name = called_tool(message)
            if name is None:
                # A backend that reads a non-string name loosely could run a refused tool.
                return jsonrpc.error_response(message["id"], jsonrpc.INVALID_PARAMS, "Invalid tool name")
            decision = self._access.check_tool(self._principal, name)
            if not decision.allowed:
                return denial_response(message["id"], decision)
        response = await self.inner.request(message, related)
        if method == "tools/list":
            return listing_narrowed(response, self._may_call)
        return response

    def _may_call(self, tool: str) -> bool:
        return self._access.check_tool(self._principal, tool).allowed


def policy_opener(opener: UpstreamOpener, access: ServiceAccess) -> UpstreamOpener:
    """`opener`, refusing principals outside the service rule and narrowing tools for the rest."""
    if not access.restricts:
        return opener

    async def open_governed(principal: Principal, unsolicited: MessageSink) -> Upstream:
        decision = access.check_service(principal)
        if not decision.allowed:
            raise PolicyDenied(decision)
        upstream = await opener(principal, unsolicited)
        return PolicyUpstream(upstream, access, principal) if access.tools else upstream

    return open_governed


Refusal = Callable[[Principal, str], str | None]
"""The key path of the rule that refuses a principal a tool, or `None` when none does."""

CredentialOrigin = Callable[[Principal, str], Awaitable[str | None]]
"""Whose credential a principal's call to a service uses: "own", "shared", or `None`."""


def _no_refusal(principal: Principal, tool: str) -> str | None:
    return None


class AuditedUpstream(WrappedUpstream):
    """An `Upstream` that records each `tools/call` through it in `log`.

    With `record_calls=False` only the calls this layer's rules refuse are recorded: an
    aggregate's own rules, whose members record the calls they serve themselves.
    """

    def __init__(
        self,
        upstream: Upstream,
        log: AuditLog,
        service: str,
        principal: Principal,
        *,
        refusal: Refusal = _no_refusal,
        record_calls: bool = True,
        credential_origin: CredentialOrigin | None = None,
    ) -> None:
        super().__init__(upstream)
        self._credential_origin = credential_origin
        self._record_calls = record_calls
        self._log = log
        self._service = service
        self._principal = principal
        self._refusal = refusal

    async def request(self, message: Message, related: MessageSink) -> Message:
        if message["method"] != "tools/call":
            return await self.inner.request(message, related)
        params = message.get("params") or {}
        tool = called_tool(message)
        digest = arguments_sha256(params["arguments"]) if "arguments" in params else None
        origin = None
        if self._credential_origin is not None:
            with contextlib.suppress(MCPFrontError):
                origin = await self._credential_origin(self._principal, self._service)
        started = time.perf_counter()
        outcome: AuditOutcome = "error"
        rule: str | None = None
        try:
            response = await self.inner.request(message, related)
            outcome, rule = self._outcome(tool, response)
            return response
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"
            raise
        finally:
            if self._record_calls or outcome == "denied":
                self._record(tool, outcome, rule, digest, started, origin)

    def _record(
        self,
        tool: str | None,
        outcome: AuditOutcome,
        rule: str | None,
        digest: str | None,
        started: float,
        origin: str | None,
    ) -> None:
        self._log.record(
            AuditEvent.of(
                self._principal,
                event="denied" if outcome == "denied" else "tool_call",
                service=self._service,
                outcome=outcome,
                tool=tool,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                rule=rule,
                arguments_sha256=digest,
                credential=origin,
            )
        )

    def _outcome(self, tool: str | None, response: Message) -> tuple[AuditOutcome, str | None]:
        if "error" in response:
            rule = self._refusal(self._principal, tool) if tool is not None else None
            return ("denied", rule) if rule is not None else ("error", None)
        result = response.get("result")
        if isinstance(result, dict) and result.get("isError") is True:
            return "tool_error", None
        return "ok", None


def refusal_of(service: str, access: ServiceAccess | None, tool_filter: ToolFilter | None) -> Refusal:
    """Which of a service's rules refuses a tool, checked in the order they apply:
    the policy first, then the tool filter under it."""
    filter_path = format_path(("mcpServers", service, "options", "toolFilter"))

    def refusal(principal: Principal, tool: str) -> str | None:
        if access is not None:
            decision = access.check_tool(principal, tool)
            if not decision.allowed:
                return decision.rule
        if tool_filter is not None and not tool_filter.permits(tool):
            return filter_path
        return None

    return refusal


def audited_opener(
    opener: UpstreamOpener,
    log: AuditLog,
    service: str,
    *,
    access: ServiceAccess | None = None,
    tool_filter: ToolFilter | None = None,
    record_calls: bool = True,
    credential_origin: CredentialOrigin | None = None,
) -> UpstreamOpener:
    """`opener`, with a session the policy refuses and every call of the others recorded
    (with whose credential it used, for a service that takes users' own)."""
    refusal = refusal_of(service, access, tool_filter)

    async def open_audited(principal: Principal, unsolicited: MessageSink) -> Upstream:
        try:
            upstream = await opener(principal, unsolicited)
        except PolicyDenied as exc:
            log.record(
                AuditEvent.of(
                    principal, event="denied", service=service, outcome="denied", rule=exc.decision.rule
                )
            )
            raise
        return AuditedUpstream(
            upstream,
            log,
            service,
            principal,
            refusal=refusal,
            record_calls=record_calls,
            credential_origin=credential_origin,
        )

    return open_audited


def filtered_opener(opener: UpstreamOpener, tool_filter: ToolFilter) -> UpstreamOpener:
    """`opener`, offering only the tools `tool_filter` permits."""

    async def open_filtered(principal: Principal, unsolicited: MessageSink) -> Upstream:
        return ToolFilteredUpstream(await opener(principal, unsolicited), tool_filter)

    return open_filtered


class Admission(Protocol):
    """Who may use a service: its guard (`ResourceGuard.admits`)."""

    def admits(self, principal: Principal) -> bool: ...


def admitted(opener: UpstreamOpener, service: str, admission: Admission) -> UpstreamOpener:
    """`opener`, for callers authenticated elsewhere (at an aggregate in front of `service`):
    only those `admission` would let in are opened a session; the rest get a 403."""

    async def open_admitted(principal: Principal, unsolicited: MessageSink) -> Upstream:
        if not admission.admits(principal):
            raise BackendError(
                f"{principal.display_name} may not use service '{service}'", code=POLICY_DENIED, status=403
            )
        return await opener(principal, unsolicited)

    return open_admitted


@dataclass(frozen=True, slots=True)
class Governance:
    """One service's rules. With `record_calls=False` the audit records only refusals:
    an aggregate's own rules, whose members record the calls they serve themselves, so
    each call is in the audit log once."""

    service: str
    audit: AuditLog
    access: ServiceAccess | None = None
    tool_filter: ToolFilter | None = None
    record_calls: bool = True
    credential_origin: CredentialOrigin | None = None

    @classmethod
    def of(
        cls,
        service: str,
        server: ServerConfig,
        audit: AuditLog,
        credential_origin: CredentialOrigin | None = None,
    ) -> Governance:
        """The rules `server` configures for `service`; `credential_origin` tells the audit
        whose credential a call used, for a service that takes users' own."""
        return cls(
            service,
            audit,
            access=ServiceAccess.of(service, server.policy) if server.policy is not None else None,
            tool_filter=server.options.tool_filter,
            record_calls=server.type != "aggregate",
            credential_origin=credential_origin if server.requires_user_token else None,
        )

    def govern(self, opener: UpstreamOpener) -> UpstreamOpener:
        """`opener`, with every rule applied to every session it opens."""
        if self.tool_filter is not None:
            opener = filtered_opener(opener, self.tool_filter)
        if self.access is not None:
            opener = policy_opener(opener, self.access)
        return audited_opener(
            opener,
            self.audit,
            self.service,
            access=self.access,
            tool_filter=self.tool_filter,
            record_calls=self.record_calls,
            credential_origin=self.credential_origin,
        )

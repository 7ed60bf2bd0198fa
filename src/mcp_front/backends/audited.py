"""`AuditedUpstream`: every tool call of a session, and every refusal, in the audit log.

It sits outside the policy and the tool filter, so it sees the calls they refuse as
well as those the backend serves. A refusal is recognised by asking the same rules
again rather than by reading the error a layer below returned: a backend that happens
to answer with the same error code cannot make its own failures look like denials.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio

from mcp_front.audit import AuditEvent, AuditLog, AuditOutcome, arguments_sha256
from mcp_front.auth.principal import Principal
from mcp_front.auth.service_policy import ServiceAccess
from mcp_front.backends.base import MessageSink, Upstream, WrappedUpstream, called_tool
from mcp_front.backends.policy import PolicyDenied
from mcp_front.config import ToolFilter
from mcp_front.config.errors import format_path
from mcp_front.transports.jsonrpc import Message
from mcp_front.transports.session import UpstreamOpener

Refusal = Callable[[Principal, str], str | None]
"""The key path of the rule that refuses a principal a tool, or `None` when none does."""


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
    ) -> None:
        super().__init__(upstream)
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
                self._record(tool, outcome, rule, digest, started)

    def _record(
        self, tool: str | None, outcome: AuditOutcome, rule: str | None, digest: str | None, started: float
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
) -> UpstreamOpener:
    """`opener`, with a session the policy refuses and every call of the others recorded."""
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
        return AuditedUpstream(upstream, log, service, principal, refusal=refusal, record_calls=record_calls)

    return open_audited

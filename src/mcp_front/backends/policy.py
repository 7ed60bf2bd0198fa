"""A service's `policy`, enforced on every session whatever its backend or protocol era.

The service rule is checked before the backend is opened, so a caller the policy refuses
never costs a process or a connection. Tool rules narrow `tools/list` to what the
principal may call and refuse the rest by name: unlike `toolFilter`, which pretends a
hidden tool does not exist, a policy refusal says which rule refused, since the caller
may well be entitled to ask for access.
"""

from __future__ import annotations

from typing import Final

from mcp_front.auth.principal import Principal
from mcp_front.auth.service_policy import AccessDecision, ServiceAccess
from mcp_front.backends.base import (
    BackendError,
    MessageSink,
    Upstream,
    WrappedUpstream,
    called_tool,
    listing_narrowed,
)
from mcp_front.transports import jsonrpc
from mcp_front.transports.jsonrpc import Message
from mcp_front.transports.session import UpstreamOpener

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

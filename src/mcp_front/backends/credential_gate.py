"""A missing credential is never a dead end: what a `tools/call` gets instead of failing.

A service that needs each user's own credential still lists its tools without one. A
`tools/call` by a user who has not connected the service is answered by the gateway,
without reaching the backend, in the richest form the client understands:

- 2026-07-28: an `input_required` result carrying a URL-mode `elicitation/create`, with a
  `requestState` the client sends back when it retries (sealed to the caller and the
  service, short-lived); the retry goes through once the credential is there;
- 2025-11-25 clients that declared URL elicitation: error -32042 listing it;
- any other client: an `isError` result whose text gives the exact URL.

The URL is the connect page with a tag of the caller (`credentials.links`), so the page
stores nothing for a person other than the one whose session asked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Final

from mcp_types import CLIENT_CAPABILITIES_META_KEY

from mcp_front.auth.principal import Principal
from mcp_front.backends.base import (
    MessageSink,
    SelfContainedClient,
    Upstream,
    UpstreamOpener,
    WrappedUpstream,
)
from mcp_front.backends.templating import UserTokenSource
from mcp_front.credentials.links import connect_url
from mcp_front.credentials.oauth_connections import ServiceUnreachable
from mcp_front.protocol import jsonrpc
from mcp_front.protocol.jsonrpc import Message
from mcp_front.protocol.revisions import envelope_version
from mcp_front.storage import StoreUnavailable

__all__ = ["URL_ELICITATION_REQUIRED", "CredentialGate", "credential_gate"]

URL_ELICITATION_REQUIRED: Final = -32042
"""2025-11-25: the request needs the user to visit a URL first (`data.elicitations`)."""
REQUEST_STATE_TTL: Final = 15 * 60
REQUEST_STATE_PURPOSE: Final = b"mcp-front request state"
"""What a keyring derives the request-state keys for (`Keyring.derived_keys`)."""
_PROCESS_STATE_KEYS = (secrets.token_bytes(32),)
"""Without a keyring there is no shared store either, so no other replica to convince."""
_INPUT_KEY = "connect"


class CredentialGate(WrappedUpstream):
    """Answers the `tools/call`s of a caller without a credential for the service."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        service: str,
        display_name: str,
        principal: Principal,
        user_tokens: UserTokenSource,
        base_url: str,
        state_keys: Sequence[bytes] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`state_keys`: the first seals a `requestState`, any opens one; replicas behind one
        load balancer must share them, as the retry may reach another."""
        super().__init__(upstream)
        self._service = service
        self._display_name = display_name
        self._principal = principal
        self._user_tokens = user_tokens
        self._base_url = base_url
        self._clock = clock
        self._state_keys = tuple(state_keys) if state_keys else _PROCESS_STATE_KEYS
        self._url_elicitation = False

    async def request(self, message: Message, related: MessageSink) -> Message:
        method = message["method"]
        if method == "initialize":
            capabilities = (message.get("params") or {}).get("capabilities")
            self._url_elicitation = _declares_url_elicitation(capabilities)
        elif method == "tools/call":
            try:
                credential = await self._user_tokens(self._principal, self._service)
            except ServiceUnreachable:
                return _tool_error(
                    message["id"],
                    f"{self._display_name} cannot be reached to renew your access right now; "
                    "your connection is kept. Try again in a moment.",
                )
            except StoreUnavailable:
                return _tool_error(
                    message["id"],
                    f"The gateway cannot read your {self._display_name} connection right now "
                    "(its store is unreachable); your connection is kept. Try again in a moment.",
                )
            if credential is None:
                return self._connect_first(message, related)
            message = self._without_request_state(message)
        return await self.inner.request(message, related)

    # -- the three answers -----------------------------------------------------------------

    def _connect_first(self, message: Message, related: MessageSink) -> Message:
        request_id = message["id"]
        if self._principal.kind != "user":
            return _tool_error(
                request_id,
                f"{self._display_name} needs a signed-in user's own credential; "
                "a service credential has no account to connect.",
            )
        url = connect_url(self._base_url, self._service, self._principal.key)
        text = f"{self._display_name} is not connected for you yet. Open {url} to connect it, then try again."
        elicitation = {"mode": "url", "url": url, "message": f"Connect {self._display_name} to continue."}
        # A 2026-07-28 request: passed through natively with its envelope, or with the
        # envelope taken off for a handshake-era backend, its sink still knowing the client.
        if isinstance(related, SelfContainedClient) or envelope_version(message) is not None:
            capabilities = (
                related.client_capabilities
                if isinstance(related, SelfContainedClient)
                else _envelope_capabilities(message)
            )
            if _declares_url_elicitation(capabilities):
                request = {"method": "elicitation/create", "params": elicitation}
                result = {
                    "resultType": "input_required",
                    "inputRequests": {_INPUT_KEY: request},
                    "requestState": self._request_state(),
                }
                return jsonrpc.result_response(request_id, result)
            return _tool_error(request_id, text)
        if self._url_elicitation:
            elicitations = [{**elicitation, "elicitationId": str(uuid.uuid4())}]
            return jsonrpc.error_response(
                request_id, URL_ELICITATION_REQUIRED, text, data={"elicitations": elicitations}
            )
        return _tool_error(request_id, text)

    # -- request state (2026-07-28) ---------------------------------------------------------

    def _request_state(self) -> str:
        expires = int(self._clock()) + REQUEST_STATE_TTL
        return f"v1.{expires}.{self._mac(self._state_keys[0], expires)}"

    def _mac(self, key: bytes, expires: int) -> str:
        text = f"{self._principal.key}\x00{self._service}\x00{expires}".encode()
        return hmac.new(key, text, hashlib.sha256).hexdigest()

    def _without_request_state(self, message: Message) -> Message:
        """A retried call with its input answers and state taken off, once its state is
        checked: the backend never sees the gateway's own exchange."""
        params = message.get("params")
        if not isinstance(params, dict) or ("requestState" not in params and "inputResponses" not in params):
            return message
        state = params.get("requestState")
        if not isinstance(state, str) or not self._state_is_ours(state):
            return message
        kept = {key: value for key, value in params.items() if key not in ("requestState", "inputResponses")}
        return {**message, "params": kept}

    def _state_is_ours(self, state: str) -> bool:
        version, _, rest = state.partition(".")
        expires_text, _, mac = rest.partition(".")
        if version != "v1" or not expires_text.isdigit() or int(expires_text) < self._clock():
            return False
        expires = int(expires_text)
        return any(hmac.compare_digest(mac, self._mac(key, expires)) for key in self._state_keys)


def credential_gate(
    opener: UpstreamOpener,
    service: str,
    display_name: str,
    user_tokens: UserTokenSource,
    base_url: str,
    *,
    state_keys: Sequence[bytes] | None = None,
) -> UpstreamOpener:
    """`opener`, with each session behind a `CredentialGate`."""

    async def open_gated(principal: Principal, unsolicited: MessageSink) -> Upstream:
        upstream = await opener(principal, unsolicited)
        return CredentialGate(
            upstream,
            service=service,
            display_name=display_name,
            principal=principal,
            user_tokens=user_tokens,
            base_url=base_url,
            state_keys=state_keys,
        )

    return open_gated


def _tool_error(request_id: jsonrpc.RequestId, text: str) -> Message:
    return jsonrpc.result_response(request_id, {"content": [{"type": "text", "text": text}], "isError": True})


def _declares_url_elicitation(capabilities: Any) -> bool:
    if not isinstance(capabilities, dict):
        return False
    elicitation = capabilities.get("elicitation")
    return isinstance(elicitation, dict) and isinstance(elicitation.get("url"), dict)


def _envelope_capabilities(message: Message) -> Any:
    meta = (message.get("params") or {}).get("_meta")
    return meta.get(CLIENT_CAPABILITIES_META_KEY) if isinstance(meta, dict) else None

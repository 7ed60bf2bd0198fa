"""Forwarding a request to the replica that owns its session, streamed both ways.

The owner authenticates the request itself (the client's `Authorization` goes along) and
checks that the session is the caller's; the forwarding replica adds `Mcp-Front-Forwarded`,
a MAC over the target replica, the method, the path, the session and the time, so the
owner serves the request as it is and never forwards it again. Nobody without the
gateway's keys can make that header, and one made for a replica means nothing to another.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import ssl
import time
from collections.abc import Callable, Sequence

import anyio
import httpx2
from starlette.types import Receive, Scope, Send

from mcp_front.protocol import jsonrpc
from mcp_front.transports import http

logger = logging.getLogger("mcp_front.transports")

FORWARDED_HEADER = "mcp-front-forwarded"
FORWARDED_SCOPE_KEY = "mcp_front.forwarded"
"""Set in the scope of a request another replica forwarded here, once its header checks."""
FORWARDING_PURPOSE = b"mcp-front replica forwarding"
"""What a keyring derives the forwarding keys for (`Keyring.derived_keys`)."""
MAX_AGE = 60
"""Seconds a forwarded header stays good, clocks of replicas a little apart included."""
CONNECT_TIMEOUT = 5.0
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        FORWARDED_HEADER.encode(),
    }
)
_NOT_FORWARDED = _HOP_BY_HOP | {b"host", b"content-length"}
"""Request headers the forwarding client sets itself."""


class ForwardingSeal:
    """Makes and checks the `Mcp-Front-Forwarded` header."""

    def __init__(self, keys: Sequence[bytes], *, clock: Callable[[], float] = time.time) -> None:
        if not keys:
            raise ValueError("forwarding needs at least one key")
        self._keys = tuple(keys)
        self._clock = clock

    def make(self, target: str, method: str, path: str, session_id: str) -> str:
        issued = int(self._clock())
        return f"{issued}.{self._mac(self._keys[0], target, method, path, session_id, issued)}"

    def check(self, value: str, own_id: str, method: str, path: str, session_id: str) -> bool:
        issued_text, _, mac = value.partition(".")
        if not issued_text.isdigit() or abs(self._clock() - int(issued_text)) > MAX_AGE:
            return False
        issued = int(issued_text)
        return any(
            hmac.compare_digest(mac, self._mac(key, own_id, method, path, session_id, issued))
            for key in self._keys
        )

    @staticmethod
    def _mac(key: bytes, target: str, method: str, path: str, session_id: str, issued: int) -> str:
        text = "\x00".join((target, method, path, session_id, str(issued))).encode()
        return hmac.new(key, text, hashlib.sha256).hexdigest()


def request_path(scope: Scope) -> str:
    """The path as the client sent it (base path included), which every replica serves alike."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if isinstance(raw, bytes) else str(scope["path"])


class Forwarder:
    """Carries requests to other replicas over one pooled HTTP client."""

    def __init__(self, *, read_timeout: float) -> None:
        """`read_timeout`: the longest silence of an owner; its streams ping more often."""
        timeout = httpx2.Timeout(connect=CONNECT_TIMEOUT, read=read_timeout, write=30.0, pool=CONNECT_TIMEOUT)
        # Forwarded event streams hold their connections for as long as they last: no cap on
        # connections, so a busy replica is never mistaken for a dead one for want of one.
        limits = httpx2.Limits(max_connections=None, max_keepalive_connections=32)
        self._client = httpx2.AsyncClient(
            timeout=timeout, limits=limits, follow_redirects=False, trust_env=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def forward(
        self, address: str, seal: str, scope: Scope, body: bytes, receive: Receive, send: Send
    ) -> bool:
        """Send the request to the replica at `address` and stream its answer back; false,
        with nothing sent to the client, when that replica takes no connection."""
        query = scope.get("query_string", b"").decode("latin-1")
        url = address + request_path(scope) + (f"?{query}" if query else "")
        headers = [(name, value) for name, value in scope["headers"] if name.lower() not in _NOT_FORWARDED]
        headers.append((FORWARDED_HEADER.encode(), seal.encode()))
        request = self._client.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self._client.send(request, stream=True)
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as error:
            if not _tls_refused(error):
                return False
            # A certificate this replica does not trust is a deployment error, not a dead
            # owner: taking its live sessions over would serve them twice.
            logger.error("replica at %s refused: its TLS certificate is not trusted here", address)
            await http.rpc_error(
                502, jsonrpc.INTERNAL_ERROR, "Bad Gateway: the replica holding this session failed"
            )(scope, receive, send)
            return True
        except httpx2.HTTPError as error:
            logger.warning("forwarding to replica failed: %s", type(error).__name__)
            await http.rpc_error(
                502, jsonrpc.INTERNAL_ERROR, "Bad Gateway: the replica holding this session failed"
            )(scope, receive, send)
            return True
        try:
            kept = [(name, value) for name, value in response.headers.raw if name.lower() not in _HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": kept})
            async with anyio.create_task_group() as task_group:
                # The client going away ends the forwarded request too, so the owner sees it leave.
                task_group.start_soon(http.cancel_on_disconnect, receive, task_group.cancel_scope)
                try:
                    async for chunk in response.aiter_raw():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except httpx2.HTTPError:
                    logger.info("the replica holding a session closed its answer early")
                task_group.cancel_scope.cancel()
            await http.end_stream(send)
        except OSError:
            pass  # the client left while its answer was being written
        finally:
            await response.aclose()
        return True


def _tls_refused(error: BaseException) -> bool:
    """Whether a failed connection failed in its TLS handshake."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

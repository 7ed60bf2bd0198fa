"""A round-robin HTTP reverse proxy in front of several gateway replicas, for tests.

Each request, not each connection, goes to the next replica, so one client's session
meets every replica in turn; bodies stream both ways, so event streams pass through as
they come. A replica that refuses the connection is skipped for the next, as load
balancers do once a health check fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import uvicorn

_HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te", b"trailer", b"host"}


class RoundRobin:
    """The ASGI app of the balancer; `served` lists the replica of each request, in order,
    and `opened` the replica of each streamable-HTTP session, by its id."""

    def __init__(self, replicas: Sequence[str]) -> None:
        self.replicas = list(replicas)
        self.served: list[str] = []
        self.opened: dict[str, str] = {}
        self._next = 0
        self._client = httpx2.AsyncClient(timeout=httpx2.Timeout(10, read=None), trust_env=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(name, value) for name, value in scope["headers"] if name.lower() not in _HOP_BY_HOP]
        headers = [(name, value) for name, value in headers if name.lower() != b"content-length"]
        path = scope["raw_path"].decode() + (
            f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        )
        response = None
        for _ in range(len(self.replicas)):
            replica = self.replicas[self._next % len(self.replicas)]
            self._next += 1
            request = self._client.build_request(
                scope["method"], replica + path, headers=headers, content=body
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx2.ConnectError:
                continue
            self.served.append(replica)
            session_id = response.headers.get("mcp-session-id")
            if session_id is not None and not any(name.lower() == b"mcp-session-id" for name, _ in headers):
                self.opened[session_id] = replica
            break
        if response is None:
            await send({"type": "http.response.start", "status": 502, "headers": []})
            await send({"type": "http.response.body", "body": b"no replica answers"})
            return
        try:
            kept = [(name, value) for name, value in response.headers.raw if name.lower() not in _HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": kept})
            async with anyio.create_task_group() as task_group:

                async def stop_when_client_leaves() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    task_group.cancel_scope.cancel()

                task_group.start_soon(stop_when_client_leaves)
                try:
                    async for chunk in response.aiter_raw():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except httpx2.HTTPError:
                    pass  # the replica died mid-answer: the client sees the stream end
                task_group.cancel_scope.cancel()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass
        finally:
            await response.aclose()


@asynccontextmanager
async def round_robin(port: int, replicas: Sequence[str]) -> AsyncIterator[RoundRobin]:
    """The balancer listening on 127.0.0.1:`port` in front of `replicas` (their base URLs)."""
    balancer = RoundRobin(replicas)
    config = uvicorn.Config(balancer, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    stopped = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve()
        finally:
            stopped.set()

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(serve)
        with anyio.fail_after(30):
            while not server.started:
                await anyio.sleep(0.05)
        try:
            yield balancer
        finally:
            server.should_exit = True
            server.force_exit = True
            # Even when the test failed: the port is the next test's.
            with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                await stopped.wait()
                await balancer.aclose()

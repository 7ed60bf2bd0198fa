"""fastmcp's proxy in front of a streamable-HTTP MCP server, for `bench.http_backend`.

    bench/.venv-fastmcp/bin/python bench/fastmcp_proxy.py URL --port P [--connected]

Run by the Python of `bench/.venv-fastmcp` (fastmcp and its own `mcp`), not the
benchmark's, so it imports nothing from `bench`. It serves streamable HTTP at
`http://127.0.0.1:P/mcp` with fastmcp's defaults (stateful sessions, event-stream
answers, default logging):

* by default, `fastmcp.server.create_proxy(URL)`, the documented way: fastmcp opens a
  fresh backend session (`initialize`, `notifications/initialized`, the request, then
  DELETE) for every request it forwards;
* with `--connected`, `create_proxy(client)` with a `fastmcp.Client` connected once at
  startup: every request of every client session goes over that one backend session
  (fastmcp warns that concurrent sessions may then mix their request context).
"""

from __future__ import annotations

import argparse
from contextlib import AsyncExitStack

import anyio
from fastmcp import Client
from fastmcp.server import create_proxy


async def serve(url: str, port: int, connected: bool) -> None:
    async with AsyncExitStack() as stack:
        if connected:
            client = await stack.enter_async_context(Client(url))
            proxy = create_proxy(client, name="bench-fastmcp-proxy")
        else:
            proxy = create_proxy(url, name="bench-fastmcp-proxy")
        await proxy.run_http_async(
            transport="http", host="127.0.0.1", port=port, path="/mcp", show_banner=False
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the backend's streamable-HTTP endpoint")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connected", action="store_true", help="one backend session for everything")
    args = parser.parse_args()
    anyio.run(serve, args.url, args.port, args.connected)


if __name__ == "__main__":
    main()

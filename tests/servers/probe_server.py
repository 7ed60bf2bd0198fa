"""A stdio MCP server whose tools reveal what the gateway did to it.

Tools report the process's id and environment, crash on demand, wait, report
progress, log, and call back to the client (sampling, elicitation, roots), so tests
can check isolation, respawn and two-way traffic through the gateway.
"""

from __future__ import annotations

import os
import sys
import uuid

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import SamplingMessage, TextContent

server = MCPServer("probe")
INSTANCE = uuid.uuid4().hex


@server.tool()
def pid() -> int:
    """The id of this server process (in its own PID namespace when sandboxed)."""
    return os.getpid()


@server.tool()
def instance() -> str:
    """What tells this process apart from every other one, sandboxed or not."""
    return INSTANCE


@server.tool()
def read_file(path: str) -> str:
    """The text of a file, or why it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError as error:
        return f"<{type(error).__name__}: {error.strerror}>"


@server.tool()
def write_file(path: str, text: str) -> str:
    """Write a file; 'written', or why not."""
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as error:
        return f"<{type(error).__name__}: {error.strerror}>"
    return "written"


@server.tool()
def processes() -> list[int]:
    """The process ids this process can see in /proc."""
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())


@server.tool()
def env(name: str) -> str:
    """The value of an environment variable, or '<unset>'."""
    return os.environ.get(name, "<unset>")


@server.tool()
def env_names() -> list[str]:
    """Every environment variable name this process sees."""
    return sorted(os.environ)


@server.tool()
def argv() -> list[str]:
    """This process's command-line arguments."""
    return sys.argv[1:]


@server.tool()
def cwd() -> str:
    """This process's working directory."""
    return os.getcwd()


@server.tool()
def spam(lines: int) -> str:
    """Write many lines to stderr."""
    for number in range(lines):
        print(f"noise {number}", file=sys.stderr)
    sys.stderr.flush()
    return f"wrote {lines}"


@server.tool()
def echo(text: str) -> str:
    return text


@server.tool()
def crash(message: str = "crashing on request") -> str:
    """Write to stderr and exit at once, without answering."""
    print(message, file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
async def sleep(seconds: float) -> str:
    await anyio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
async def progress(steps: int, ctx: Context) -> str:
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
    return f"done {steps}"


@server.tool()
async def log(message: str, ctx: Context) -> str:
    await ctx.info(message)
    return "logged"


@server.tool()
async def announce(ctx: Context) -> str:
    """Tell the client the tool and resource lists changed."""
    await ctx.session.send_tool_list_changed()
    await ctx.session.send_resource_list_changed()
    return "announced"


@server.tool()
async def sample(prompt: str, ctx: Context) -> str:
    """Ask the client's model (sampling/createMessage) and return its answer."""
    result = await ctx.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
        max_tokens=32,
    )
    content = result.content
    return content.text if isinstance(content, TextContent) else str(content)


@server.tool()
async def roots(ctx: Context) -> list[str]:
    """The client's roots (roots/list)."""
    result = await ctx.session.list_roots()
    return [str(root.uri) for root in result.roots]


if __name__ == "__main__":
    server.run("stdio")

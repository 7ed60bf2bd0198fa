"""Tools defined in the configuration, served as an MCP server by the gateway itself.

An `InlineUpstream` answers the handshake, `ping`, `tools/list` and `tools/call` in
process; a call runs the tool's command (`inline_command`) or makes its HTTP request
(`inline_http`), with the caller's arguments checked against the tool's `inputSchema`
and filled into its templates (`inline_arguments`). Nothing goes through a shell, a
command runs in a sandbox of its own as a stdio child does (unless the service's
`sandbox` is off), and a call's processes are killed when it ends, times out or is
cancelled.

All sessions share one `InlineToolRegistry`: one pooled HTTP client, and the record of
the process groups running now, so that its `aclose()` leaves none behind.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Final

import anyio
import httpx2

from mcp_front._version import __version__
from mcp_front.auth.principal import Principal
from mcp_front.backends.base import BackendError, MessageSink, configured
from mcp_front.backends.child_process import child_environment
from mcp_front.backends.inline_arguments import (
    ArgumentRefused,
    command_line,
    environment,
    validation_problems,
)
from mcp_front.backends.inline_command import MAX_OUTPUT_BYTES, ProcessGroups, run_command
from mcp_front.backends.inline_http import build_request, call_http, http_client
from mcp_front.backends.inline_result import clean, error_result, output_result, redaction_margin, tail
from mcp_front.backends.sandbox import Bubblewrap, SandboxPathRefused, runnable
from mcp_front.config import ServerConfig
from mcp_front.config.models.inline import InlineTool
from mcp_front.lifecycle import TaskGroupOwner
from mcp_front.protocol import jsonrpc
from mcp_front.protocol.jsonrpc import Message
from mcp_front.protocol.revisions import negotiated_version

logger = logging.getLogger("mcp_front.backends.inline")

DEFAULT_TIMEOUT: Final = timedelta(seconds=60)
DEFAULT_CALLS_PER_PRINCIPAL: Final = 8
"""How many calls one principal may have running at once, over all its sessions; more wait."""
DEFAULT_CALLS_IN_TOTAL: Final = 64
"""How many calls may run at once in the whole gateway; more wait."""
_SIGNALLED: Final = 128


def _answer(message: Message, result: dict[str, Any]) -> Message:
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


class InlineUpstream:
    """The `Upstream` of one client session on an inline service."""

    def __init__(
        self, registry: InlineToolRegistry, service: str, server: ServerConfig, principal: Principal
    ):
        if server.inline is None:
            raise BackendError(f"service '{service}' has no inline tools")
        self._registry = registry
        self.service = service
        self._server = server
        self._inline = server.inline
        self.principal = principal
        self._tools = {tool.name: tool for tool in server.inline.tools}
        self._calls: set[anyio.CancelScope] = set()
        self._closed = False

    # -- Upstream -----------------------------------------------------------------------

    async def request(self, message: Message, related: MessageSink) -> Message:
        if self._closed:
            raise BackendError(f"the session with service '{self.service}' is closed")
        method = message["method"]
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if method == "initialize":
            return _answer(message, self._initialize(params))
        if method == "ping":
            return _answer(message, {})
        if method == "tools/list":
            return _answer(message, {"tools": [self._describe(tool) for tool in self._inline.tools]})
        if method == "tools/call":
            return await self._call(message, params)
        return jsonrpc.error_response(message["id"], jsonrpc.METHOD_NOT_FOUND, f"Method not found: {method}")

    async def notify(self, message: Message) -> None:
        """Nothing to do: the tool list never changes and calls are not resumable."""

    async def respond(self, message: Message) -> None:
        """Nothing to do: an inline service sends no requests of its own."""

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for scope in list(self._calls):
            scope.cancel()
        self._registry.forget(self)

    # -- the methods ----------------------------------------------------------------------

    def _initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {
            "protocolVersion": negotiated_version(params.get("protocolVersion")),
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": self.service, "version": __version__},
        }
        if self._inline.description:
            result["instructions"] = self._inline.description
        return result

    @staticmethod
    def _describe(tool: InlineTool) -> dict[str, Any]:
        return {"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema}

    async def _call(self, message: Message, params: dict[str, Any]) -> Message:
        name = params.get("name")
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(name, str) or not isinstance(arguments, dict):
            return jsonrpc.error_response(
                message["id"], jsonrpc.INVALID_PARAMS, '"name" must be a string and "arguments" an object'
            )
        tool = self._tools.get(name)
        if tool is None:
            # Unknown tools are protocol errors (MCP 2025-11-25, server/tools, "Error Handling").
            return jsonrpc.error_response(message["id"], jsonrpc.INVALID_PARAMS, f"Unknown tool: {name}")
        # Invalid arguments are tool execution errors, so the model can read them and retry
        # (MCP 2025-11-25, server/tools, "Error Handling"; SEP-1303).
        problems = validation_problems(tool.input_schema, arguments)
        if problems:
            text = "\n".join([f"the arguments of {name} are not valid:", *problems])
            return _answer(message, error_result(text))
        started = time.monotonic()
        scope = anyio.CancelScope()
        self._calls.add(scope)
        try:
            with scope:
                # Waiting for a slot is inside the scope: the session closing cancels the wait.
                async with self._registry.slot(self.principal):
                    result = await self._run(tool, arguments)
            if scope.cancelled_caught:
                raise BackendError(f"the session with service '{self.service}' closed during the call")
        finally:
            self._calls.discard(scope)
        logger.info(
            "service %s: %s called %s (%s, %.0f ms)",
            self.service,
            self.principal.display_name,
            name,
            "error" if result.get("isError") else "ok",
            (time.monotonic() - started) * 1000,
            extra={"service": self.service, "principal": self.principal.display_name, "tool": name},
        )
        return _answer(message, result)

    def _timeout(self, tool: InlineTool) -> float:
        return (tool.timeout or self._server.timeout or DEFAULT_TIMEOUT).total_seconds()

    async def _run(self, tool: InlineTool, arguments: dict[str, Any]) -> dict[str, Any]:
        secrets: list[str] = []
        try:
            if tool.command is not None:
                return await self._run_command(tool, tool.command, arguments, secrets)
            assert tool.http is not None
            request = build_request(self._registry.client, tool.http, arguments, secrets)
        except ArgumentRefused as refused:
            return error_result(f"{tool.name} was not run: {refused}", secrets)
        except (httpx2.InvalidURL, UnicodeError) as exc:
            return error_result(f"{tool.name} was not run: the arguments cannot be sent: {exc}", secrets)
        return await call_http(
            self._registry.client, request, time_limit=self._timeout(tool), secrets=secrets
        )

    async def _run_command(
        self, tool: InlineTool, command: str, arguments: dict[str, Any], secrets: list[str]
    ) -> dict[str, Any]:
        argv = command_line(command, tool.args, arguments)
        env = child_environment(environment(tool.env, arguments, secrets))
        timeout = self._timeout(tool)
        try:
            confined = await self._registry.confined(argv, self._server)
        except SandboxPathRefused as refused:
            return error_result(f"{tool.name} was not run: {refused}", secrets)
        try:
            if confined is not None and not runnable(command, env.get("PATH"), None):
                # Inside, a missing program would only be bubblewrap's exit status.
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
            outcome = await run_command(
                confined or argv,
                env,
                time_limit=timeout,
                groups=self._registry.groups,
                output_limit=self._registry.output_limit,
                redaction_margin=redaction_margin(secrets),
            )
        except OSError as exc:
            return error_result(f"{tool.name} could not start {command}: {exc.strerror or exc}", secrets)
        if outcome.timed_out:
            return error_result(f"{tool.name} did not finish within {timeout:g}s and was stopped", secrets)
        if outcome.returncode != 0:
            reason = _ending(outcome.returncode, confined=confined is not None)
            stderr = tail(clean(outcome.stderr, secrets, self._registry.output_limit), secrets)
            message = f"{tool.name} {reason}" + (f":\n{stderr}" if stderr else "")
            return error_result(message, secrets)
        # Redacted as a whole before it is cut to the limit, so no part of a secret survives.
        stdout = clean(outcome.stdout, secrets, self._registry.output_limit)
        return output_result(stdout, secrets, truncated=outcome.truncated)


def _ending(status: int | None, *, confined: bool) -> str:
    if status is not None and status < 0:
        return f"was killed by signal {-status}"
    if confined and status is not None and status > _SIGNALLED:
        # Bubblewrap reports a command a signal ended as a shell does.
        return f"exited with status {status} (killed by signal {status - _SIGNALLED})"
    return f"exited with status {status}"


class InlineToolRegistry(TaskGroupOwner):
    """Opens `InlineUpstream`s; owns the HTTP client and the running commands they share."""

    def __init__(
        self,
        services: Mapping[str, ServerConfig],
        *,
        client: httpx2.AsyncClient | None = None,
        output_limit: int = MAX_OUTPUT_BYTES,
        calls_per_principal: int = DEFAULT_CALLS_PER_PRINCIPAL,
        calls_in_total: int = DEFAULT_CALLS_IN_TOTAL,
        sandbox: Bubblewrap | None = None,
    ) -> None:
        """`sandbox` confines the command tools of services whose `sandbox` is enabled (one
        without the gateway's files to hide by default)."""
        self.services = services
        self.sandbox = sandbox if sandbox is not None else Bubblewrap()
        self.client = client or http_client()
        self.output_limit = output_limit
        self.groups = ProcessGroups()
        self._upstreams: set[InlineUpstream] = set()
        self.calls_per_principal = calls_per_principal
        self._total = anyio.CapacityLimiter(calls_in_total)
        # A principal's limiter, and how many of its calls hold or wait for a slot; dropped at 0.
        self._per_principal: dict[str, tuple[anyio.CapacityLimiter, int]] = {}

    @asynccontextmanager
    async def slot(self, principal: Principal) -> AsyncIterator[None]:
        """Hold one of the principal's call slots and one of the registry's, waiting for them."""
        key = principal.key
        limiter, users = self._per_principal.get(key) or (anyio.CapacityLimiter(self.calls_per_principal), 0)
        self._per_principal[key] = (limiter, users + 1)
        try:
            async with limiter, self._total:
                yield
        finally:
            limiter, users = self._per_principal[key]
            if users <= 1:
                del self._per_principal[key]
            else:
                self._per_principal[key] = (limiter, users - 1)

    async def confined(self, argv: list[str], server: ServerConfig) -> list[str] | None:
        """`argv` wrapped in the sandbox, or None where the service runs its commands
        unsandboxed: its `sandbox` is off, or none can be had here (`sandbox_warnings`)."""
        if not server.sandbox.enabled or not (await self.sandbox.check()).available:
            return None
        return self.sandbox.command(argv, server.sandbox, cwd=None)

    async def sandbox_warnings(self) -> list[str]:
        """What an operator must know about sandboxing here: nothing when every service
        that wants its command tools sandboxed gets it."""
        confined = [
            name
            for name, server in self.services.items()
            if server.sandbox.enabled and server.inline and any(tool.command for tool in server.inline.tools)
        ]
        check = await self.sandbox.check() if confined else None
        if check is None or check.available:
            return []
        return [f"command tools of {', '.join(confined)} run unsandboxed: {check.problem}"]

    @property
    def calls_running(self) -> int:
        """How many calls hold a slot now."""
        return int(self._total.borrowed_tokens)

    async def open(self, service: str, principal: Principal, sink: MessageSink) -> InlineUpstream:
        """A new session; an inline service sends nothing unsolicited."""
        upstream = InlineUpstream(self, service, configured(self.services, service, "registry"), principal)
        self._upstreams.add(upstream)
        return upstream

    @property
    def session_count(self) -> int:
        return len(self._upstreams)

    async def aclose(self) -> None:
        """End every session, kill whatever still runs, and close the client."""
        for upstream in list(self._upstreams):
            await upstream.aclose()
        self.groups.kill_all()
        await self.client.aclose()

    def forget(self, upstream: InlineUpstream) -> None:
        """Drop a session that ended."""
        self._upstreams.discard(upstream)

#!/usr/bin/env python3
"""An MCP server with everything the official conformance suite's server scenarios exercise.

The tools, resources and prompts carry the exact names and shapes that
``conformance server`` (npm ``@modelcontextprotocol/conformance``) asks for
(``test_simple_text``, ``test://static-text``, ``test_simple_prompt``, ...), and the
server answers the protocol utilities the suite checks: completions,
``logging/setLevel``, resource subscriptions, progress notifications, sampling and
elicitation requests sent back to the client, and resumable SSE streams (an in-memory
event store replays what a client missed when it reconnects with ``Last-Event-ID``).

Usage::

    python tests/servers/conformance_server.py stdio
    python tests/servers/conformance_server.py http --port 8931   # http://127.0.0.1:8931/mcp
    python tests/servers/conformance_server.py sse --port 8932    # http://127.0.0.1:8932/sse

The legacy SSE transport (``sse``) cannot resume a stream: ``test_reconnection`` then
completes without closing it.

Bound to a loopback address, the HTTP transports reject requests whose ``Host`` or
``Origin`` header names another host (DNS rebinding protection).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import re
import struct
import sys
import warnings
import wave
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from itertools import count
from typing import Any, Final, get_args

import anyio
import uvicorn
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http import (
    MCP_SESSION_ID_HEADER,
    EventCallback,
    EventId,
    EventMessage,
    EventStore,
    StreamId,
)
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

logger = logging.getLogger("conformance_server")

SERVER_NAME: Final = "mcp-conformance-server"
SERVER_VERSION: Final = "1.0.0"
HTTP_PATH: Final = "/mcp"
SSE_PATH: Final = "/sse"
SSE_MESSAGE_PATH: Final = "/messages/"
SSE_RETRY_MS: Final = 500
"""The ``retry`` hint sent with SSE priming events: how long a client waits before reconnecting."""

Context = ServerRequestContext[Any, Any]
ToolHandler = Callable[[Context, Mapping[str, Any]], Awaitable[types.CallToolResult]]
PromptRenderer = Callable[[Mapping[str, str]], list[types.PromptMessage]]

LOG_LEVELS: Final[tuple[types.LoggingLevel, ...]] = get_args(types.LoggingLevel)
"""Every log level, least severe first."""

NO_ARGUMENTS: Final[dict[str, Any]] = {"type": "object", "properties": {}}


def _png_pixel(red: int, green: int, blue: int) -> bytes:
    """Encode a valid 1x1 RGB PNG image of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # width, height, bit depth, RGB, defaults
    pixels = zlib.compress(bytes([0, red, green, blue]))  # one scanline: filter byte + one pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _wav_silence(frames: int = 8, rate: int = 8000) -> bytes:
    """Encode a valid, very short mono 16-bit WAV file of silence."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x00" * frames)
    return buffer.getvalue()


RED_PIXEL_PNG: Final = _png_pixel(255, 0, 0)
RED_PIXEL_PNG_BASE64: Final = base64.b64encode(RED_PIXEL_PNG).decode()
SILENCE_WAV_BASE64: Final = base64.b64encode(_wav_silence()).decode()

TEMPLATE_URI: Final = "test://template/{id}/data"
TEMPLATE_PATTERN: Final = re.compile(r"test://template/(?P<id>[^/]+)/data")

SEP1034_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
}
"""An elicitation form with a default for every primitive type (SEP-1034)."""

SEP1330_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Single choice without titles",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Single choice with titles",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Single choice with legacy enumNames titles",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Multiple choice without titles",
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Multiple choice with titles",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}
"""An elicitation form with each enum variant of SEP-1330."""

USER_INFO_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}

JSON_SCHEMA_2020_12: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}
"""An input schema whose 2020-12 keywords (``$schema``, ``$defs``) must survive listing (SEP-1613)."""

COMPLETIONS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("test_prompt_with_arguments", "arg1"): ("paris", "park", "party", "testing", "tests"),
    ("test_prompt_with_arguments", "arg2"): ("alpha", "beta", "gamma"),
    (TEMPLATE_URI, "id"): ("1", "2", "3", "123"),
}
"""Completion candidates, keyed by (prompt name or resource template, argument name)."""


class ToolArgumentError(ValueError):
    """A tool was called with missing or ill-typed arguments."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    tool: types.Tool
    run: ToolHandler


@dataclass(frozen=True, slots=True)
class StaticResource:
    resource: types.Resource
    content: str | bytes


@dataclass(frozen=True, slots=True)
class PromptSpec:
    prompt: types.Prompt
    render: PromptRenderer


class InMemoryEventStore(EventStore):
    """Keeps the latest SSE events so a client can resume a stream with ``Last-Event-ID``."""

    def __init__(self, max_events: int = 10_000) -> None:
        self._events: deque[tuple[EventId, StreamId, types.JSONRPCMessage | None]] = deque(maxlen=max_events)
        self._ids = count(1)

    async def store_event(self, stream_id: StreamId, message: types.JSONRPCMessage | None) -> EventId:
        event_id = str(next(self._ids))
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        events = list(self._events)
        position = next((i for i, (event_id, _, _) in enumerate(events) if event_id == last_event_id), None)
        if position is None:
            return None
        stream_id = events[position][1]
        for event_id, event_stream_id, message in events[position + 1 :]:
            if event_stream_id == stream_id and message is not None:  # priming events carry no message
                await send_callback(EventMessage(message, event_id))
        return stream_id


def _session_key(ctx: Context) -> str | None:
    """The HTTP session of a request; ``None`` on stdio, where a process serves one client.

    Streamable HTTP names it in the ``Mcp-Session-Id`` header, legacy SSE in the
    ``session_id`` query parameter of the message endpoint.
    """
    headers = getattr(ctx.request, "headers", None)
    if headers is None:
        return None
    session = headers.get(MCP_SESSION_ID_HEADER)
    if session is None and isinstance(ctx.request, Request):
        session = ctx.request.query_params.get("session_id")
    return session


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)])


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def _string_argument(arguments: Mapping[str, Any], name: str) -> str:
    value = arguments.get(name)
    if not isinstance(value, str):
        raise ToolArgumentError(f"Argument {name!r} is required and must be a string")
    return value


def _tool(
    name: str,
    description: str,
    run: ToolHandler,
    input_schema: dict[str, Any] = NO_ARGUMENTS,
) -> ToolSpec:
    return ToolSpec(types.Tool(name=name, description=description, input_schema=input_schema), run)


def _user_message(content: types.ContentBlock) -> types.PromptMessage:
    return types.PromptMessage(role="user", content=content)


class ConformanceServer:
    """The server's state and request handlers; `build()` wires them into an SDK `Server`."""

    def __init__(self) -> None:
        self._log_levels: dict[str | None, types.LoggingLevel] = {}
        self._subscriptions: dict[str | None, set[str]] = {}
        self._tools = {spec.tool.name: spec for spec in self._tool_specs()}
        self._resources = {entry.resource.uri: entry for entry in self._static_resources()}
        self._prompts = {spec.prompt.name: spec for spec in self._prompt_specs()}

    def build(self) -> Server:
        server: Server = Server(
            SERVER_NAME,
            version=SERVER_VERSION,
            instructions="Serves the fixtures of the MCP conformance suite's server scenarios.",
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=self.list_resources,
            on_list_resource_templates=self.list_resource_templates,
            on_read_resource=self.read_resource,
            on_subscribe_resource=self.subscribe,
            on_unsubscribe_resource=self.unsubscribe,
            on_list_prompts=self.list_prompts,
            on_get_prompt=self.get_prompt,
            on_completion=self.complete,
        )
        # Registered directly: the constructor argument warns that logging is deprecated in
        # 2026-07-28, but the handshake protocol versions the suite speaks still define it.
        server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self.set_logging_level)
        return server

    # Tools

    def _tool_specs(self) -> list[ToolSpec]:
        return [
            _tool("test_simple_text", "Returns one text content block.", self._simple_text),
            _tool("test_image_content", "Returns one PNG image content block.", self._image_content),
            _tool("test_audio_content", "Returns one WAV audio content block.", self._audio_content),
            _tool("test_embedded_resource", "Returns an embedded text resource.", self._embedded_resource),
            _tool(
                "test_multiple_content_types",
                "Returns text, image and embedded resource content together.",
                self._multiple_content_types,
            ),
            _tool(
                "test_tool_with_logging",
                "Sends three info log notifications while it runs.",
                self._tool_with_logging,
            ),
            _tool(
                "test_tool_with_progress",
                "Reports progress 0, 50 and 100 of 100, then returns the request's progress token.",
                self._tool_with_progress,
            ),
            _tool("test_error_handling", "Always fails with a tool execution error.", self._error_handling),
            _tool(
                "test_sampling",
                "Asks the client's LLM to answer a prompt (sampling/createMessage).",
                self._sampling,
                {
                    "type": "object",
                    "properties": {
                        "prompt": {"type": "string", "description": "The prompt to send to the LLM"}
                    },
                    "required": ["prompt"],
                },
            ),
            _tool(
                "test_elicitation",
                "Asks the user for a username and an email address (elicitation/create).",
                self._elicitation,
                {
                    "type": "object",
                    "properties": {
                        "message": {"type": "string", "description": "The message to show the user"}
                    },
                    "required": ["message"],
                },
            ),
            _tool(
                "test_elicitation_sep1034_defaults",
                "Elicits a form whose fields all have default values (SEP-1034).",
                self._elicitation_sep1034_defaults,
            ),
            _tool(
                "test_elicitation_sep1330_enums",
                "Elicits a form with every enum variant (SEP-1330).",
                self._elicitation_sep1330_enums,
            ),
            _tool(
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features; echoes its arguments.",
                self._json_schema_2020_12,
                JSON_SCHEMA_2020_12,
            ),
            _tool(
                "test_reconnection",
                "Closes its SSE stream mid-call so the client resumes it with Last-Event-ID (SEP-1699).",
                self._reconnection,
            ),
        ]

    async def list_tools(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[spec.tool for spec in self._tools.values()])

    async def call_tool(self, ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = self._tools.get(params.name)
        if spec is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}")
        try:
            return await spec.run(ctx, params.arguments or {})
        except ToolArgumentError as exc:
            return _error(str(exc))

    async def _simple_text(self, ctx: Context, arguments: Mapping[str, Any]) -> types.CallToolResult:
        return _text("This is a simple text response for testing.")

    async def _image_content(self, ctx: Context, arguments: Mapping[str, Any]) -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.ImageContent(data=RED_PIXEL_PNG_BASE64, mime_type="image/png")]
        )

    async def _audio_content(self, ctx: Context, arguments: Mapping[str, Any]) -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.AudioContent(data=SILENCE_WAV_BASE64, mime_type="audio/wav")]
        )

    async def _embedded_resource(self, ctx: Context, arguments: Mapping[str, Any]) -> types.CallToolResult:
        resource = types.TextResourceContents(
            uri="test://embedded-resource",
            mime_type="text/plain",
            text="This is an embedded resource content.",
        )
        return types.CallToolResult(content=[types.EmbeddedResource(resource=resource)])

    async def _multiple_content_types(
        self, ctx: Context, arguments: Mapping[str, Any]
    ) -> types.CallToolResult:
        resource = types.TextResourceContents(
            uri="test://mixed-content-resource",
            mime_type="application/json",
            text=json.dumps({"test": "data", "value": 123}),
        )
        return types.CallToolResult(
            content=[
                types.TextContent(text="Multiple content types test:"),
                types.ImageContent(data=RED_PIXEL_PNG_BASE64, mime_type="image/png"),
                types.EmbeddedResource(resource=resource),
            ]
        )

    async def _tool_with_logging(self, ctx: Context, arguments: Mapping[str, Any]) -> types.CallToolResult:
        await self._log(ctx, "info", "Tool execution started")
        await anyio.sleep(0.05)
        await self._log(ctx, "info", "Tool processing data")
        await anyio.sleep(0.05)
        await self._log(ctx, "info", "Tool execution completed")
        return _text("Tool with logging executed successfully")

    async def _tool_with_progress(self, ctx: Context, arguments: Mapping[str, Any]) -> types.CallToolResult:
        for step in (0, 50, 100):
            if step:
                await anyio.sleep(0.05)
            await ctx.session.report_progress(step, 100, f"Completed step {step} of 100")
        token = ctx.meta.get("progress_token") if ctx.meta is not None else None
        return _text(str(token))

    async def _error_handling(self, ctx: Context, arguments: Mapping[str, Any]) -> types.CallToolResult:
        return _error("This tool intentionally returns an error for testing")

    async def _sampling(self, ctx: Context, arguments: Mapping[str, Any]) -> types.CallToolResult:
        prompt = _string_argument(arguments, "prompt")
        capabilities = ctx.session.client_capabilities
        if capabilities is None or capabilities.sampling is None:
            return _error("The client does not support sampling")
        try:
            result = await ctx.session.create_message(
                messages=[types.SamplingMessage(role="user", content=types.TextContent(text=prompt))],
                max_tokens=100,
                related_request_id=ctx.request_id,
            )
        except MCPError as exc:
            return _error(f"Sampling failed: {exc.message}")
        answer = (
            result.content.text if isinstance(result.content, types.TextContent) else "(non-text response)"
        )
        return _text(f"LLM response: {answer}")

    async def _elicit(self, ctx: Context, message: str, schema: dict[str, Any]) -> types.ElicitResult | str:
        """Send a form elicitation; return the client's answer, or why there is none."""
        capabilities = ctx.session.client_capabilities
        if capabilities is None or capabilities.elicitation is None:
            return "The client does not support elicitation"
        try:
            return await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
        except MCPError as exc:
            return f"Elicitation failed: {exc.message}"

    async def _elicitation(self, ctx: Context, arguments: Mapping[str, Any]) -> types.CallToolResult:
        result = await self._elicit(ctx, _string_argument(arguments, "message"), USER_INFO_SCHEMA)
        if isinstance(result, str):
            return _error(result)
        return _text(f"User response: action={result.action}, content={json.dumps(result.content or {})}")

    async def _elicitation_sep1034_defaults(
        self, ctx: Context, arguments: Mapping[str, Any]
    ) -> types.CallToolResult:
        result = await self._elicit(
            ctx, "Please review and update the form fields with defaults", SEP1034_SCHEMA
        )
        if isinstance(result, str):
            return _error(result)
        return _text(
            f"Elicitation completed: action={result.action}, content={json.dumps(result.content or {})}"
        )

    async def _elicitation_sep1330_enums(
        self, ctx: Context, arguments: Mapping[str, Any]
    ) -> types.CallToolResult:
        result = await self._elicit(ctx, "Please select options from the enum fields", SEP1330_SCHEMA)
        if isinstance(result, str):
            return _error(result)
        return _text(
            f"Elicitation completed: action={result.action}, content={json.dumps(result.content or {})}"
        )

    async def _json_schema_2020_12(self, ctx: Context, arguments: Mapping[str, Any]) -> types.CallToolResult:
        return _text(f"Received arguments: {json.dumps(dict(arguments), sort_keys=True)}")

    async def _reconnection(self, ctx: Context, arguments: Mapping[str, Any]) -> types.CallToolResult:
        await self._log(ctx, "info", "Before disconnect")
        if ctx.close_sse_stream is not None:  # only streamable HTTP with an event store can resume
            await ctx.close_sse_stream()
        await anyio.sleep(0.2)  # give the client time to reconnect
        await self._log(ctx, "info", "After reconnect")
        return _text("Reconnection test completed")

    # Logging

    async def set_logging_level(self, ctx: Context, params: types.SetLevelRequestParams) -> types.EmptyResult:
        self._log_levels[_session_key(ctx)] = params.level
        return types.EmptyResult()

    async def _log(self, ctx: Context, level: types.LoggingLevel, message: str) -> None:
        """Send a log notification on the request's stream unless the client asked for a higher level."""
        threshold = self._log_levels.get(_session_key(ctx))
        if threshold is not None and LOG_LEVELS.index(level) < LOG_LEVELS.index(threshold):
            return
        await ctx.session.send_log_message(
            level, message, logger=SERVER_NAME, related_request_id=ctx.request_id
        )

    # Resources

    @staticmethod
    def _static_resources() -> list[StaticResource]:
        return [
            StaticResource(
                types.Resource(
                    uri="test://static-text",
                    name="static-text",
                    description="A static text resource",
                    mime_type="text/plain",
                ),
                "This is the content of the static text resource.",
            ),
            StaticResource(
                types.Resource(
                    uri="test://static-binary",
                    name="static-binary",
                    description="A static binary resource (a 1x1 PNG image)",
                    mime_type="image/png",
                ),
                RED_PIXEL_PNG,
            ),
            StaticResource(
                types.Resource(
                    uri="test://watched-resource",
                    name="watched-resource",
                    description="A resource clients can subscribe to",
                    mime_type="text/plain",
                ),
                "Watched resource content",
            ),
        ]

    async def list_resources(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[entry.resource for entry in self._resources.values()])

    async def list_resource_templates(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            uri_template=TEMPLATE_URI,
            name="template-data",
            description="JSON data for the ID in the URI",
            mime_type="application/json",
        )
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def read_resource(
        self, ctx: Context, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = params.uri
        contents: types.TextResourceContents | types.BlobResourceContents
        if (entry := self._resources.get(uri)) is not None:
            mime_type = entry.resource.mime_type
            if isinstance(entry.content, bytes):
                blob = base64.b64encode(entry.content).decode()
                contents = types.BlobResourceContents(uri=uri, mime_type=mime_type, blob=blob)
            else:
                contents = types.TextResourceContents(uri=uri, mime_type=mime_type, text=entry.content)
        elif (match := TEMPLATE_PATTERN.fullmatch(uri)) is not None:
            item_id = match["id"]
            data = {"id": item_id, "templateTest": True, "data": f"Data for ID: {item_id}"}
            contents = types.TextResourceContents(
                uri=uri, mime_type="application/json", text=json.dumps(data)
            )
        else:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Resource not found: {uri}", data={"uri": uri})
        return types.ReadResourceResult(contents=[contents])

    async def subscribe(self, ctx: Context, params: types.SubscribeRequestParams) -> types.EmptyResult:
        if params.uri not in self._resources:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Resource not found: {params.uri}")
        self._subscriptions.setdefault(_session_key(ctx), set()).add(params.uri)
        return types.EmptyResult()

    async def unsubscribe(self, ctx: Context, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        self._subscriptions.get(_session_key(ctx), set()).discard(params.uri)
        return types.EmptyResult()

    # Prompts

    @staticmethod
    def _prompt_specs() -> list[PromptSpec]:
        def required(name: str, description: str) -> types.PromptArgument:
            return types.PromptArgument(name=name, description=description, required=True)

        def simple(arguments: Mapping[str, str]) -> list[types.PromptMessage]:
            return [_user_message(types.TextContent(text="This is a simple prompt for testing."))]

        def with_arguments(arguments: Mapping[str, str]) -> list[types.PromptMessage]:
            text = f"Prompt with arguments: arg1='{arguments['arg1']}', arg2='{arguments['arg2']}'"
            return [_user_message(types.TextContent(text=text))]

        def with_embedded_resource(arguments: Mapping[str, str]) -> list[types.PromptMessage]:
            resource = types.TextResourceContents(
                uri=arguments["resourceUri"],
                mime_type="text/plain",
                text="Embedded resource content for testing.",
            )
            return [
                _user_message(types.EmbeddedResource(resource=resource)),
                _user_message(types.TextContent(text="Please process the embedded resource above.")),
            ]

        def with_image(arguments: Mapping[str, str]) -> list[types.PromptMessage]:
            return [
                _user_message(types.ImageContent(data=RED_PIXEL_PNG_BASE64, mime_type="image/png")),
                _user_message(types.TextContent(text="Please analyze the image above.")),
            ]

        return [
            PromptSpec(
                types.Prompt(name="test_simple_prompt", description="A simple prompt without arguments"),
                simple,
            ),
            PromptSpec(
                types.Prompt(
                    name="test_prompt_with_arguments",
                    description="A prompt with two required arguments",
                    arguments=[
                        required("arg1", "First test argument"),
                        required("arg2", "Second test argument"),
                    ],
                ),
                with_arguments,
            ),
            PromptSpec(
                types.Prompt(
                    name="test_prompt_with_embedded_resource",
                    description="A prompt that embeds a resource",
                    arguments=[required("resourceUri", "URI of the resource to embed")],
                ),
                with_embedded_resource,
            ),
            PromptSpec(
                types.Prompt(name="test_prompt_with_image", description="A prompt that includes an image"),
                with_image,
            ),
        ]

    async def list_prompts(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[spec.prompt for spec in self._prompts.values()])

    async def get_prompt(self, ctx: Context, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        spec = self._prompts.get(params.name)
        if spec is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {params.name}")
        arguments = params.arguments or {}
        missing = [
            arg.name for arg in spec.prompt.arguments or () if arg.required and arg.name not in arguments
        ]
        if missing:
            raise MCPError(
                code=types.INVALID_PARAMS, message=f"Missing required arguments: {', '.join(missing)}"
            )
        return types.GetPromptResult(description=spec.prompt.description, messages=spec.render(arguments))

    # Completions

    async def complete(self, ctx: Context, params: types.CompleteRequestParams) -> types.CompleteResult:
        target = params.ref.name if isinstance(params.ref, types.PromptReference) else params.ref.uri
        candidates = COMPLETIONS.get((target, params.argument.name), ())
        prefix = params.argument.value.lower()
        values = [value for value in candidates if value.lower().startswith(prefix)]
        return types.CompleteResult(
            completion=types.Completion(values=values, total=len(values), has_more=False)
        )


async def serve_stdio(server: Server) -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http(server: Server, host: str, port: int) -> None:
    app = server.streamable_http_app(
        streamable_http_path=HTTP_PATH,
        event_store=InMemoryEventStore(),
        retry_interval=SSE_RETRY_MS,
        host=host,
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=1)
    logger.info("Serving MCP at http://%s:%d%s", host, port, HTTP_PATH)
    await uvicorn.Server(config).serve()


def sse_app(server: Server, host: str) -> Starlette:
    """The legacy HTTP+SSE transport: a GET stream at ``/sse``, client messages POSTed to ``/messages/``."""
    security = None
    if host in ("127.0.0.1", "localhost", "::1"):
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    transport = SseServerTransport(SSE_MESSAGE_PATH, security_settings=security)

    async def handle_sse(request: Request) -> Response:
        try:
            async with transport.connect_sse(request.scope, request.receive, request._send) as streams:
                await server.run(streams[0], streams[1], server.create_initialization_options())
        except ValueError:  # refused by DNS rebinding protection; the response is already sent
            pass
        return Response()

    routes = [
        Route(SSE_PATH, endpoint=handle_sse, methods=["GET"]),
        Mount(SSE_MESSAGE_PATH, app=transport.handle_post_message),
    ]
    return Starlette(routes=routes)


async def serve_sse(server: Server, host: str, port: int) -> None:
    config = uvicorn.Config(
        sse_app(server, host), host=host, port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    logger.info("Serving MCP over SSE at http://%s:%d%s", host, port, SSE_PATH)
    await uvicorn.Server(config).serve()


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    transports = parser.add_subparsers(dest="transport", required=True)
    transports.add_parser("stdio", help="serve one client over stdin/stdout")
    http = transports.add_parser("http", help=f"serve streamable HTTP at http://HOST:PORT{HTTP_PATH}")
    http.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    http.add_argument("--port", type=int, default=8931, help="port to bind (default: %(default)s)")
    sse = transports.add_parser("sse", help=f"serve legacy HTTP+SSE at http://HOST:PORT{SSE_PATH}")
    sse.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    sse.add_argument("--port", type=int, default=8932, help="port to bind (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = _parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    logger.setLevel(logging.INFO)
    # The suite exercises logging and sampling, which 2026-07-28 deprecates but the
    # handshake protocol versions still define.
    warnings.filterwarnings("ignore", category=MCPDeprecationWarning)
    server = ConformanceServer().build()
    if arguments.transport == "stdio":
        anyio.run(serve_stdio, server)
    elif arguments.transport == "sse":
        anyio.run(serve_sse, server, arguments.host, arguments.port)
    else:
        anyio.run(serve_http, server, arguments.host, arguments.port)


if __name__ == "__main__":
    main()

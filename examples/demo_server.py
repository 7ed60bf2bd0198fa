#!/usr/bin/env python3
"""A tiny MCP server for trying mcp-front offline.

It needs nothing but Python 3.11 or newer: no package to install, no network. It speaks
the MCP stdio transport, one JSON-RPC 2.0 message per line on stdin and stdout, and logs
to stderr only, so stdout carries nothing but protocol messages.

What it offers:

* tools ``echo`` (returns its text), ``add`` (adds two numbers, with a structured
  result), ``now`` (the current UTC time) and ``whoami`` (the ``DEMO_USER`` environment
  variable, or ``anonymous``: handy to see which user's backend answers through the
  gateway);
* one resource, ``demo://about``;
* one prompt, ``greeting``.

Try it by hand::

    printf '%s\\n' '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}' \\
        | DEMO_USER=alice python3 examples/demo_server.py
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

SERVER_INFO = {"name": "mcp-front-demo", "title": "mcp-front demo server", "version": "1.0.0"}
PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_PROTOCOL_VERSION = PROTOCOL_VERSIONS[-1]

# JSON-RPC 2.0 error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
RESOURCE_NOT_FOUND = -32002  # MCP's code for an unknown resource URI

log = logging.getLogger("demo-server")

JsonObject = dict[str, Any]


class JsonRpcError(Exception):
    """A failure to report to the client as a JSON-RPC error response."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> JsonObject:
        error: JsonObject = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ToolInputError(ValueError):
    """A tool was called with arguments it cannot use; reported as a tool error result."""


# Tools


def text_result(text: str, structured: JsonObject | None = None) -> JsonObject:
    result: JsonObject = {"content": [{"type": "text", "text": text}], "isError": False}
    if structured is not None:
        result["structuredContent"] = structured
    return result


def number_argument(arguments: JsonObject, name: str) -> float:
    value = arguments.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolInputError(f"argument {name!r} must be a number")
    return value


def echo(arguments: JsonObject) -> JsonObject:
    text = arguments.get("text")
    if not isinstance(text, str):
        raise ToolInputError("argument 'text' must be a string")
    return text_result(text)


def add(arguments: JsonObject) -> JsonObject:
    a, b = number_argument(arguments, "a"), number_argument(arguments, "b")
    total = a + b
    return text_result(f"{a:g} + {b:g} = {total:g}", {"sum": total})


def now(arguments: JsonObject) -> JsonObject:
    return text_result(datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))


def whoami(arguments: JsonObject) -> JsonObject:
    return text_result(os.environ.get("DEMO_USER") or "anonymous")


@dataclass(frozen=True)
class Tool:
    definition: JsonObject
    run: Callable[[JsonObject], JsonObject]


def object_schema(properties: JsonObject | None = None, required: Iterable[str] = ()) -> JsonObject:
    schema: JsonObject = {"type": "object", "properties": properties or {}}
    if required:
        schema["required"] = list(required)
    return schema


TOOLS: dict[str, Tool] = {
    "echo": Tool(
        {
            "name": "echo",
            "description": "Return the given text unchanged.",
            "inputSchema": object_schema(
                {"text": {"type": "string", "description": "Text to echo"}}, ["text"]
            ),
        },
        echo,
    ),
    "add": Tool(
        {
            "name": "add",
            "description": "Add two numbers.",
            "inputSchema": object_schema({"a": {"type": "number"}, "b": {"type": "number"}}, ["a", "b"]),
            "outputSchema": object_schema({"sum": {"type": "number"}}, ["sum"]),
        },
        add,
    ),
    "now": Tool(
        {"name": "now", "description": "The current time in UTC (ISO 8601).", "inputSchema": object_schema()},
        now,
    ),
    "whoami": Tool(
        {
            "name": "whoami",
            "description": "The user this server runs for (the DEMO_USER environment variable).",
            "inputSchema": object_schema(),
        },
        whoami,
    ),
}

# Resources and prompts

ABOUT_RESOURCE: JsonObject = {
    "uri": "demo://about",
    "name": "about",
    "title": "About this server",
    "description": "What the demo server is and what it offers",
    "mimeType": "text/markdown",
}
ABOUT_TEXT = """\
# mcp-front demo server

A dependency-free MCP server for the offline quickstart. It offers the tools `echo`,
`add`, `now` and `whoami`, this resource, and the prompt `greeting`.
"""

GREETING_PROMPT: JsonObject = {
    "name": "greeting",
    "title": "Greeting",
    "description": "Ask the model to greet someone by name.",
    "arguments": [{"name": "name", "description": "Who to greet", "required": True}],
}


# Method handlers: each takes the request's params and returns its result.


def initialize(params: JsonObject) -> JsonObject:
    requested = params.get("protocolVersion")
    version = requested if requested in PROTOCOL_VERSIONS else LATEST_PROTOCOL_VERSION
    client = params.get("clientInfo") or {}
    log.info("initialize from %s (protocol %s)", client.get("name", "an unnamed client"), version)
    return {
        "protocolVersion": version,
        "capabilities": {"tools": {}, "resources": {}, "prompts": {}},
        "serverInfo": SERVER_INFO,
        "instructions": "A demo server: try the whoami tool to see which user it runs for.",
    }


def ping(params: JsonObject) -> JsonObject:
    return {}


def list_tools(params: JsonObject) -> JsonObject:
    return {"tools": [tool.definition for tool in TOOLS.values()]}


def call_tool(params: JsonObject) -> JsonObject:
    name = params.get("name")
    tool = TOOLS.get(name) if isinstance(name, str) else None
    if tool is None:
        raise JsonRpcError(INVALID_PARAMS, f"Unknown tool: {name}")
    arguments = params.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise JsonRpcError(INVALID_PARAMS, "'arguments' must be an object")
    log.info("tools/call %s", name)
    try:
        return tool.run(arguments)
    except ToolInputError as exc:
        return {"content": [{"type": "text", "text": f"Invalid arguments: {exc}"}], "isError": True}


def list_resources(params: JsonObject) -> JsonObject:
    return {"resources": [ABOUT_RESOURCE]}


def read_resource(params: JsonObject) -> JsonObject:
    uri = params.get("uri")
    if uri != ABOUT_RESOURCE["uri"]:
        raise JsonRpcError(RESOURCE_NOT_FOUND, "Resource not found", {"uri": uri})
    return {"contents": [{"uri": uri, "mimeType": ABOUT_RESOURCE["mimeType"], "text": ABOUT_TEXT}]}


def list_prompts(params: JsonObject) -> JsonObject:
    return {"prompts": [GREETING_PROMPT]}


def get_prompt(params: JsonObject) -> JsonObject:
    if params.get("name") != GREETING_PROMPT["name"]:
        raise JsonRpcError(INVALID_PARAMS, f"Unknown prompt: {params.get('name')}")
    arguments = params.get("arguments") or {}
    person = arguments.get("name") if isinstance(arguments, dict) else None
    if not isinstance(person, str) or not person:
        raise JsonRpcError(INVALID_PARAMS, "Missing required argument: name")
    text = f"Please greet {person} warmly, in one short sentence."
    return {
        "description": GREETING_PROMPT["description"],
        "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
    }


METHODS: dict[str, Callable[[JsonObject], JsonObject]] = {
    "initialize": initialize,
    "ping": ping,
    "tools/list": list_tools,
    "tools/call": call_tool,
    "resources/list": list_resources,
    "resources/read": read_resource,
    "prompts/list": list_prompts,
    "prompts/get": get_prompt,
}


# JSON-RPC framing


def error_response(request_id: Any, error: JsonRpcError) -> JsonObject:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


def handle_message(message: Any) -> JsonObject | None:
    """Answer one decoded message: a response for a request, ``None`` for a notification."""
    if (
        not isinstance(message, dict)
        or message.get("jsonrpc") != "2.0"
        or not isinstance(message.get("method"), str)
    ):
        request_id = message.get("id") if isinstance(message, dict) else None
        return error_response(request_id, JsonRpcError(INVALID_REQUEST, "Invalid Request"))
    method: str = message["method"]
    params = message.get("params", {})

    if "id" not in message:  # a notification: never answered
        if method not in ("notifications/initialized", "notifications/cancelled"):
            log.debug("ignoring notification %s", method)
        return None

    request_id = message["id"]
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return error_response(
            None, JsonRpcError(INVALID_REQUEST, "Request id must be a string or an integer")
        )
    handler = METHODS.get(method)
    try:
        if handler is None:
            raise JsonRpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
        if not isinstance(params, dict):
            raise JsonRpcError(INVALID_PARAMS, "params must be an object")
        return {"jsonrpc": "2.0", "id": request_id, "result": handler(params)}
    except JsonRpcError as error:
        return error_response(request_id, error)
    except Exception:
        log.exception("%s failed", method)
        return error_response(request_id, JsonRpcError(INTERNAL_ERROR, "Internal error"))


def handle_line(line: bytes) -> JsonObject | None:
    """Answer one line read from stdin."""
    try:
        message = json.loads(line)
    except ValueError:  # covers invalid JSON and invalid UTF-8
        return error_response(None, JsonRpcError(PARSE_ERROR, "Parse error"))
    return handle_message(message)


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Read messages from ``stdin`` until it closes, writing each response as one line to ``stdout``."""
    for line in stdin:
        if not line.strip():
            continue
        response = handle_line(line)
        if response is not None:
            stdout.write(json.dumps(response, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
            stdout.flush()


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(message)s")
    log.info("ready on stdio (protocol versions %s)", ", ".join(PROTOCOL_VERSIONS))
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        serve(sys.stdin.buffer, sys.stdout.buffer)
    log.info("stdin closed, exiting")


if __name__ == "__main__":
    main()

"""Placeholders in inline tools must name an argument, and may not choose where an HTTP call goes."""

from __future__ import annotations

from typing import Any

from mcp_front.config import load_config
from tests.unit.config.support import problems, with_servers

SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}, "q": {"type": "string"}}}


def inline(**tool: Any) -> dict[str, Any]:
    return with_servers(t={"transportType": "inline", "inline": {"tools": [{"name": "x", **tool}]}})


def test_placeholders_naming_arguments_are_accepted() -> None:
    document = inline(
        inputSchema=SCHEMA,
        http={
            "url": "https://api.example.com/items/{{id}}?q={{q}}",
            "headers": {"X-Id": "{{id}}"},
            "body": {"q": "{{q}}", "list": ["about {{id}}"]},
        },
    )
    assert load_config(document, environ={}).mcp_servers["t"].inline is not None


def test_go_templates_are_not_placeholders() -> None:
    document = inline(command="docker", args=["ps", "--format", "{{.Names}}", "{{ json . }}"])
    assert load_config(document, environ={}).mcp_servers["t"].inline is not None


def test_each_unknown_placeholder_is_reported_at_its_key() -> None:
    document = inline(
        inputSchema=SCHEMA, command="tool", args=["{{id}}", "--x={{nope}}"], env={"A": "{{other}}"}
    )
    assert problems(document) == [
        'mcpServers.t.inline.tools[0].args[1]: {{nope}} names no property of "inputSchema"'
        ' — add "nope" to inputSchema.properties, or fix the name',
        'mcpServers.t.inline.tools[0].env.A: {{other}} names no property of "inputSchema"'
        ' — add "other" to inputSchema.properties, or fix the name',
    ]


def test_placeholders_in_http_headers_and_body_are_checked() -> None:
    document = inline(
        inputSchema=SCHEMA,
        http={"url": "https://api.example.com/", "headers": {"X": "{{h}}"}, "body": {"a": [1, "{{b}}"]}},
    )
    assert problems(document) == [
        'mcpServers.t.inline.tools[0].http.headers.X: {{h}} names no property of "inputSchema"'
        ' — add "h" to inputSchema.properties, or fix the name',
        'mcpServers.t.inline.tools[0].http.body: {{b}} (at a[1]) names no property of "inputSchema"'
        ' — add "b" to inputSchema.properties, or fix the name',
    ]


def test_a_placeholder_in_the_host_is_refused() -> None:
    for url in ("https://{{id}}/x", "https://api.{{id}}.example.com/", "https://api.example.com{{id}}"):
        assert problems(inline(inputSchema=SCHEMA, http={"url": url})) == [
            "mcpServers.t.inline.tools[0].http.url: may not have placeholders in its scheme or host:"
            " arguments must not choose the server — write the host literally; put arguments in the path"
            " or query"
        ]


def test_the_command_takes_no_placeholders() -> None:
    assert problems(inline(inputSchema=SCHEMA, command="{{id}}")) == [
        "mcpServers.t.inline.tools[0].command: takes no placeholders: the program run is fixed"
        ' — pass arguments in "args"'
    ]


def test_an_invalid_input_schema_is_reported() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integr"}}}
    [issue] = problems(inline(inputSchema=schema, command="tool"))
    assert issue.startswith("mcpServers.t.inline.tools[0].inputSchema: is not a valid JSON Schema:")


def test_secret_values_are_never_templates() -> None:
    document = inline(command="tool", env={"TOKEN": {"$env": "TOKEN"}})
    config = load_config(document, environ={"TOKEN": "{{not-an-argument}}"})
    assert config.mcp_servers["t"].inline is not None

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from mcp_front.config import (
    BasicServiceAuth,
    BearerServiceAuth,
    GatewayConfig,
    InlineConfig,
    InlineHttpCall,
    InlineTool,
    ProxyConfig,
    ServerConfig,
    ServerOptions,
    SessionsConfig,
    ToolFilter,
    load_config,
)

from .support import SEED_CONFIG, problems, stdio_server, with_servers


class TestBuildingInPython:
    def test_a_gateway_is_built_from_models_with_snake_case_names(self) -> None:
        config = GatewayConfig(
            proxy=ProxyConfig(base_url="https://mcp.example.com", addr="127.0.0.1:9000"),
            mcp_servers={
                "filesystem": ServerConfig(
                    transport_type="stdio",
                    command="npx",
                    args=["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
                    service_auths=[BearerServiceAuth(tokens=[SecretStr("dev-token-123")], user="ci-bot")],
                    options=ServerOptions(tool_filter=ToolFilter(mode="block", tools=["write_file"])),
                )
            },
        )

        assert config.proxy.listen_port == 9000
        assert config.mcp_servers["filesystem"].service_auths[0].user == "ci-bot"

    def test_defaults_make_a_usable_gateway(self) -> None:
        config = GatewayConfig()

        assert config.proxy.base_url == "http://localhost:8080"
        assert config.proxy.addr == ":8080"
        assert config.proxy.name == "mcp-front"
        assert config.proxy.sessions == SessionsConfig()
        assert config.proxy.auth is None
        assert config.mcp_servers == {}

    def test_the_rules_apply_to_models_built_in_python(self) -> None:
        with pytest.raises(ValidationError) as raised:
            ServerConfig(transport_type="sse")

        assert [(error["loc"], error["msg"]) for error in raised.value.errors()] == [
            (("url",), 'is required with "transportType": "sse"')
        ]

    def test_models_are_immutable(self) -> None:
        proxy = ProxyConfig()

        with pytest.raises(ValidationError):
            proxy.addr = ":9090"  # type: ignore[misc]

    def test_a_loaded_config_equals_its_python_dump_read_back(self) -> None:
        config = load_config(SEED_CONFIG, environ={})

        assert GatewayConfig.model_validate(config.model_dump()) == config

    def test_json_dumps_use_the_file_format(self) -> None:
        dumped = load_config(SEED_CONFIG, environ={}).model_dump(
            mode="json", by_alias=True, exclude_unset=True
        )

        assert dumped == SEED_CONFIG | {
            "mcpServers": {
                "filesystem": SEED_CONFIG["mcpServers"]["filesystem"]
                | {"serviceAuths": [{"type": "bearer", "tokens": ["**********"]}]}
            }
        }


class TestProxyAddresses:
    @pytest.mark.parametrize(
        ("addr", "host", "port"),
        [
            (":8080", "0.0.0.0", 8080),  # noqa: S104 - what ":8080" means
            ("127.0.0.1:9000", "127.0.0.1", 9000),
            ("[::1]:9000", "::1", 9000),
            ("localhost:80", "localhost", 80),
        ],
    )
    def test_addr_gives_host_and_port(self, addr: str, host: str, port: int) -> None:
        proxy = ProxyConfig(addr=addr)

        assert (proxy.listen_host, proxy.listen_port) == (host, port)

    @pytest.mark.parametrize("addr", ["8080", ":http", ":70000", "[::1:9000", "[nope]:80", "my host:80", ""])
    def test_a_bad_addr_is_reported_with_examples(self, addr: str) -> None:
        assert problems({"proxy": {"addr": addr}}) == [
            f'proxy.addr: must be "host:port" or ":port", got "{addr}"'
            ' — for example ":8080", "127.0.0.1:9000" or "[::1]:9000"'
        ]

    @pytest.mark.parametrize(
        ("base_url", "base_path", "origin"),
        [
            ("http://localhost:8080", "", "http://localhost:8080"),
            ("https://mcp.example.com/", "", "https://mcp.example.com"),
            ("https://Example.com:443/gateway/", "/gateway", "https://example.com"),
            ("https://example.com:8443/a/b", "/a/b", "https://example.com:8443"),
        ],
    )
    def test_base_url_gives_base_path_and_origin(self, base_url: str, base_path: str, origin: str) -> None:
        proxy = ProxyConfig(base_url=base_url)

        assert (proxy.base_path, proxy.origin) == (base_path, origin)

    @pytest.mark.parametrize(
        ("base_url", "message"),
        [
            ("localhost:8080", "must be an absolute http:// or https:// URL"),
            ("ftp://example.com", "must be an absolute http:// or https:// URL"),
            (
                "https://example.com/?a=1",
                "must be scheme://host[:port][/path], without a ?query or user:password@",
            ),
            ("https://example.com/#top", "must not have a #fragment"),
            ("http://localhost:99999", "is not a valid URL"),
        ],
    )
    def test_a_bad_base_url_is_reported(self, base_url: str, message: str) -> None:
        assert problems({"proxy": {"baseURL": base_url}}) == [
            f'proxy.baseURL: {message}, got "{base_url}" — for example "https://mcp.example.com"'
        ]

    def test_allowed_origins_are_normalised(self) -> None:
        proxy = ProxyConfig(
            allowed_origins=["HTTPS://Claude.AI/", "http://localhost:3000", "https://x.dev:443"]
        )

        assert proxy.allowed_origins == ["https://claude.ai", "http://localhost:3000", "https://x.dev"]

    def test_an_origin_with_a_path_is_rejected(self) -> None:
        assert problems({"proxy": {"allowedOrigins": ["https://claude.ai/chat"]}}) == [
            'proxy.allowedOrigins[0]: must be only scheme://host[:port], without a path, got "https://claude.ai/chat"'
            ' — for example "https://claude.ai"'
        ]


class TestServerRules:
    def test_stdio_needs_a_command(self) -> None:
        assert problems(with_servers(fs={"transportType": "stdio"})) == [
            'mcpServers.fs.command: is required with "transportType": "stdio" — for example "npx"'
        ]

    @pytest.mark.parametrize("transport", ["sse", "streamable-http"])
    def test_http_transports_need_an_http_url(self, transport: str) -> None:
        document = with_servers(
            a={"transportType": transport}, b={"transportType": transport, "url": "ws://x"}
        )

        assert problems(document) == [
            f'mcpServers.a.url: is required with "transportType": "{transport}"'
            ' — for example "http://localhost:3000/sse"',
            'mcpServers.b.url: must be an absolute http:// or https:// URL, got "ws://x"'
            ' — for example "http://localhost:3000/sse"',
        ]

    def test_inline_needs_its_tools(self) -> None:
        assert problems(with_servers(tools={"transportType": "inline"})) == [
            'mcpServers.tools.inline: is required with "transportType": "inline" — add {"tools": [...]}'
        ]

    def test_a_direct_server_needs_a_transport_type(self) -> None:
        assert problems(with_servers(fs={"command": "npx"})) == [
            'mcpServers.fs.transportType: missing required key — add "transportType": one of "stdio", "sse",'
            ' "streamable-http", "inline"'
        ]

    def test_keys_of_another_transport_are_flagged(self) -> None:
        document = with_servers(fs=stdio_server(url="http://x", headers={"A": "b"}, servers=["x"]))

        assert problems(document) == [
            'mcpServers.fs.headers: is only used with transportType "sse" or "streamable-http"',
            'mcpServers.fs.url: is only used with transportType "sse" or "streamable-http"',
            "mcpServers.fs.servers: is only used by aggregate servers"
            ' — remove it, or set "type": "aggregate"',
        ]

    def test_requires_user_token_needs_user_authentication_and_sign_in(self) -> None:
        assert problems(with_servers(notion=stdio_server(requiresUserToken=True))) == [
            'mcpServers.notion.userAuthentication: is required with "requiresUserToken": true'
            ' — describe how users get their token: {"type": "manual", ...} or {"type": "oauth", ...}',
        ]

    def test_user_tokens_need_users_to_sign_in(self) -> None:
        manual = {"type": "manual", "displayName": "Notion", "instructions": "Paste your token"}
        document = with_servers(notion=stdio_server(requiresUserToken=True, userAuthentication=manual))

        assert problems(document) == [
            "mcpServers.notion.requiresUserToken: users' own tokens need users to sign in"
            ' — configure "proxy.auth", or remove "requiresUserToken"'
        ]

    def test_an_unsandboxed_service_holding_user_tokens_needs_an_explicit_opt_in(self) -> None:
        manual = {"type": "manual", "displayName": "Notion", "instructions": "Paste your token"}
        server = stdio_server(requiresUserToken=True, userAuthentication=manual, sandbox={"enabled": False})

        assert problems(with_servers(notion=server))[:1] == [
            "mcpServers.notion.sandbox.enabled: cannot be false on a service that holds users' credentials:"
            " any process of the gateway's user could read them — keep the sandbox, or accept the risk"
            ' with "allowUnsandboxedCredentials": true'
        ]
        accepted = {**server, "sandbox": {"enabled": False, "allowUnsandboxedCredentials": True}}
        assert not any("sandbox" in problem for problem in problems(with_servers(notion=accepted)))

    def test_mcp_oauth_is_for_http_services(self) -> None:
        hosted = {"type": "mcp-oauth", "displayName": "Linear"}
        server = stdio_server(requiresUserToken=True, userAuthentication=hosted)
        assert problems(with_servers(linear=server))[:1] == [
            'mcpServers.linear.userAuthentication.type: "mcp-oauth" is for hosted MCP servers reached over'
            ' HTTP — use "oauth" or "manual", or "transportType": "streamable-http" with the server\'s url'
        ]

    def test_sandbox_is_on_by_default_and_only_for_services_that_run_processes(self) -> None:
        tools = {"tools": [{"name": "t", "command": "true"}]}
        document = with_servers(
            fs=stdio_server(),
            tools={"transportType": "inline", "inline": tools, "sandbox": {"network": False}},
        )
        config = load_config(document, environ={})
        assert config.mcp_servers["fs"].sandbox.enabled
        assert config.mcp_servers["fs"].sandbox.network
        assert config.mcp_servers["tools"].sandbox.enabled
        assert not config.mcp_servers["tools"].sandbox.network
        document = with_servers(
            web={"transportType": "sse", "url": "http://x/sse", "sandbox": {"network": False}}
        )
        assert problems(document) == [
            'mcpServers.web.sandbox: is only used with transportType "stdio" or "inline"'
        ]

    def test_service_auths_are_told_apart_by_type(self) -> None:
        document = with_servers(
            fs=stdio_server(
                serviceAuths=[
                    {"type": "bearer", "tokens": ["t1", "t2"], "name": "ci-runner"},
                    {"type": "basic", "username": "admin", "password": "pw", "user": "ops@example.com"},
                ]
            )
        )

        bearer, basic = load_config(document, environ={}).mcp_servers["fs"].service_auths

        assert isinstance(bearer, BearerServiceAuth)
        assert bearer.user == "ci-runner"
        assert isinstance(basic, BasicServiceAuth)
        assert (basic.username, basic.password.get_secret_value(), basic.user) == (
            "admin",
            "pw",
            "ops@example.com",
        )

    def test_a_service_auth_without_a_known_type_is_reported(self) -> None:
        document = with_servers(fs=stdio_server(serviceAuths=[{"tokens": ["t"]}, {"type": "token"}]))

        assert problems(document) == [
            'mcpServers.fs.serviceAuths[0].type: missing required key — add "type": one of "bearer", "basic"',
            'mcpServers.fs.serviceAuths[1].type: unknown value "token"; expected one of "bearer", "basic"',
        ]

    def test_bearer_tokens_cannot_be_empty(self) -> None:
        document = with_servers(fs=stdio_server(serviceAuths=[{"type": "bearer", "tokens": []}]))

        assert problems(document) == ["mcpServers.fs.serviceAuths[0].tokens: must not be empty"]

    def test_tool_filter_permits_by_mode(self) -> None:
        allow = ToolFilter(mode="allow", tools=["read"])
        block = ToolFilter.model_validate({"mode": "block", "list": ["write"]})

        assert [allow.permits("read"), allow.permits("write")] == [True, False]
        assert [block.permits("read"), block.permits("write")] == [True, False]

    def test_stdio_startup_timeout_defaults_to_a_minute(self) -> None:
        assert ServerConfig(transport_type="stdio", command="x").startup_timeout == timedelta(seconds=60)


class TestAggregates:
    def test_an_aggregate_combines_existing_services(self) -> None:
        document = with_servers(
            a=stdio_server(),
            b={"transportType": "sse", "url": "http://b/sse"},
            all={"type": "aggregate", "servers": ["a", "b"]},
        )

        aggregate = load_config(document, environ={}).mcp_servers["all"]

        assert (aggregate.servers, aggregate.delimiter, aggregate.transport_type) == (["a", "b"], ".", None)

    def test_an_aggregate_must_name_its_services(self) -> None:
        assert problems(with_servers(all={"type": "aggregate"})) == [
            "mcpServers.all.servers: an aggregate server needs the services it combines"
            ' — add "servers": ["service-a", "service-b"]'
        ]

    def test_an_aggregate_names_existing_direct_services(self) -> None:
        document = with_servers(
            postgres=stdio_server(),
            linear=stdio_server(),
            all={"type": "aggregate", "servers": ["postgre", "all", "other", "nothing-like-it"]},
            other={"type": "aggregate", "servers": ["linear"]},
        )

        assert problems(document) == [
            'mcpServers.all.servers[0]: there is no service named "postgre" — did you mean "postgres"?',
            "mcpServers.all.servers[1]: an aggregate server cannot include itself — remove it",
            'mcpServers.all.servers[2]: "other" is an aggregate server itself; aggregates do not nest',
            'mcpServers.all.servers[3]: there is no service named "nothing-like-it"'
            " — use one of: linear, postgres",
        ]

    def test_a_member_that_would_refuse_every_caller_of_the_aggregate_is_named(self) -> None:
        def bearer(*tokens: str, user: str | None = None) -> list[dict[str, Any]]:
            return [{"type": "bearer", "tokens": list(tokens), **({"user": user} if user else {})}]

        document = with_servers(
            same=stdio_server(serviceAuths=bearer("shared", "other")),
            named=stdio_server(serviceAuths=bearer("different", user="ci-bot")),
            basic=stdio_server(serviceAuths=[{"type": "basic", "username": "u", "password": "p"}]),
            open=stdio_server(),
            closed=stdio_server(serviceAuths=bearer("never")),
            all={
                "type": "aggregate",
                "servers": ["same", "named", "basic", "open", "closed"],
                "serviceAuths": [
                    *bearer("shared", user="ci-bot"),
                    {"type": "basic", "username": "u", "password": "p"},
                ],
            },
        )

        assert problems(document) == [
            'mcpServers.all.servers[4]: "closed" would refuse every caller of this aggregate: none of the '
            'credentials this aggregate accepts is one of its serviceAuths — give "closed" one of the '
            'aggregate\'s serviceAuths (the same token, or the same "user"), or sign users in with proxy.auth'
        ]

    def test_an_open_aggregate_over_a_guarded_member_is_refused(self) -> None:
        document = with_servers(
            db=stdio_server(serviceAuths=[{"type": "bearer", "tokens": ["t"]}]),
            all={"type": "aggregate", "servers": ["db"]},
        )
        assert [line.split(":")[0] for line in problems(document)] == ["mcpServers.all.servers[0]"]

    def test_direct_server_keys_are_flagged_on_an_aggregate(self) -> None:
        document = with_servers(a=stdio_server(), all={"type": "aggregate", "servers": ["a"], "command": "x"})

        assert problems(document) == ["mcpServers.all.command: is not used by aggregate servers — remove it"]


class TestInlineTools:
    def test_tools_run_a_command_or_make_an_http_call(self) -> None:
        inline = InlineConfig(
            tools=[
                InlineTool(name="list_buckets", command="gcloud", args=["storage", "ls"]),
                InlineTool(name="search", http=InlineHttpCall(method="GET", url="https://api.example.com/s")),
            ]
        )

        assert [tool.input_schema for tool in inline.tools] == [
            {"type": "object", "properties": {}, "additionalProperties": False}
        ] * 2

    @pytest.mark.parametrize(
        ("schema", "additional"),
        [
            ({"type": "object", "properties": {"a": {"type": "string"}}}, False),
            ({"type": "object", "additionalProperties": True}, True),
            ({"type": "object", "additionalProperties": {"type": "string"}}, {"type": "string"}),
            ({"type": "object", "patternProperties": {"^x-": {}}}, None),
            ({"type": "object", "unevaluatedProperties": False}, None),
        ],
    )
    def test_a_schema_takes_only_declared_arguments_unless_it_says_otherwise(
        self, schema: dict[str, Any], additional: object
    ) -> None:
        tool = InlineTool(name="t", command="true", input_schema=schema)
        assert tool.input_schema.get("additionalProperties") == additional

    def test_a_tool_does_one_thing(self) -> None:
        tools = [
            {"name": "nothing"},
            {"name": "both", "command": "x", "http": {"url": "https://x.dev"}},
            {"name": "both", "http": {"url": "https://x.dev"}, "args": ["a"]},
        ]
        document = with_servers(t={"transportType": "inline", "inline": {"tools": tools}})

        assert problems(document) == [
            'mcpServers.t.inline.tools[0].command: a tool needs either "command" or "http"'
            ' — add "command": "..."',
            'mcpServers.t.inline.tools[1].http: a tool has either "command" or "http", not both',
            'mcpServers.t.inline.tools[2].args: is only used with "command" — remove it',
        ]

    def test_tool_names_are_unique(self) -> None:
        tools = [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]
        document = with_servers(t={"transportType": "inline", "inline": {"tools": tools}})

        assert problems(document) == [
            'mcpServers.t.inline.tools[0].name: another tool is also named "a"',
            'mcpServers.t.inline.tools[1].name: another tool is also named "a"',
        ]

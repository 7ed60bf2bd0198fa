from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_front.config import (
    RESERVED_SERVICE_NAMES,
    BearerServiceAuth,
    ConfigError,
    ConfigIssue,
    GatewayConfig,
    load_config,
    starter_config,
)

from .support import SEED_CONFIG, problems, stdio_server, with_servers

# The project's "Try it locally" configuration, byte for byte.
TRY_IT_LOCALLY = Path(__file__).with_name("try_it_locally.json")


class TestLoadingFiles:
    def test_the_try_it_locally_config_loads_unchanged(self) -> None:
        config = load_config(TRY_IT_LOCALLY, environ={})

        server = config.mcp_servers["filesystem"]
        assert config.version == "v0.0.1-DEV_EDITION_EXPECT_CHANGES"
        assert (config.proxy.listen_host, config.proxy.listen_port, config.proxy.base_path) == (
            "0.0.0.0",  # noqa: S104 - what ":8080" means
            8080,
            "",
        )
        assert (server.transport_type, server.command) == ("stdio", "npx")
        assert server.args == ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]
        [auth] = server.service_auths
        assert isinstance(auth, BearerServiceAuth)
        assert [token.get_secret_value() for token in auth.tokens] == ["dev-token-123"]

    def test_a_path_given_as_text_loads_too(self) -> None:
        assert load_config(str(TRY_IT_LOCALLY), environ={}) == load_config(SEED_CONFIG, environ={})

    def test_a_json_syntax_error_names_line_and_column(self, tmp_path: Path) -> None:
        path = tmp_path / "config.json"
        path.write_text('{\n  "proxy": {\n    "addr": ":8080",\n  }\n}\n')

        with pytest.raises(ConfigError) as raised:
            load_config(path, environ={})

        assert raised.value.issues == (
            ConfigIssue(
                "", "invalid JSON at line 4, column 3: Expecting property name enclosed in double quotes"
            ),
        )
        assert raised.value.source == str(path)

    def test_a_missing_file_is_a_config_error(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.json"

        with pytest.raises(ConfigError) as raised:
            load_config(path, environ={})

        assert str(raised.value) == (
            f"invalid configuration in {path} (1 problem):\n"
            f"  file {path} does not exist — create one with: mcp-front init"
        )

    def test_the_document_must_be_an_object(self, tmp_path: Path) -> None:
        path = tmp_path / "config.json"
        path.write_text("[]")

        with pytest.raises(ConfigError, match="the configuration must be a JSON object"):
            load_config(path, environ={})


class TestStarterConfig:
    def test_it_loads_when_its_token_variable_is_set(self) -> None:
        config = load_config(starter_config(), environ={"MCP_FRONT_TOKEN": "local-token"})

        [auth] = config.mcp_servers["filesystem"].service_auths
        assert auth.type == "bearer"
        assert auth.tokens[0].get_secret_value() == "local-token"

    def test_it_round_trips_through_json(self, tmp_path: Path) -> None:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(starter_config(), indent=2))

        assert isinstance(load_config(path, environ={"MCP_FRONT_TOKEN": "t"}), GatewayConfig)

    def test_it_asks_for_its_token_variable(self) -> None:
        assert problems(starter_config()) == [
            "mcpServers.filesystem.serviceAuths[0].tokens[0]: environment variable MCP_FRONT_TOKEN is not set"
            " — set MCP_FRONT_TOKEN where mcp-front runs"
        ]

    def test_each_call_returns_a_new_document(self) -> None:
        starter_config()["mcpServers"].clear()

        assert "filesystem" in starter_config()["mcpServers"]


class TestErrorReport:
    def test_unknown_keys_get_a_suggestion(self) -> None:
        server = stdio_server(transport_type2=1) | {"transprotType": "stdio"}
        document = {"proxy": {"baseUrl": "http://localhost"}, "mcpServers": {"fs": server}}

        assert problems(document) == [
            'proxy.baseUrl: unknown key — did you mean "baseURL"?',
            'mcpServers.fs.transport_type2: unknown key — did you mean "transportType"?',
            'mcpServers.fs.transprotType: unknown key — did you mean "transportType"?',
        ]

    def test_an_unknown_key_without_a_close_match_lists_the_known_ones(self) -> None:
        assert problems({"proxy": {"sessions": {"zzz": 1}}}) == [
            "proxy.sessions.zzz: unknown key — remove it; the keys here are: cleanupInterval, maxPerUser,"
            " maxProcesses, retention, timeout"
        ]

    def test_a_bad_literal_lists_the_allowed_values(self) -> None:
        assert problems(with_servers(fs=stdio_server(transportType="stdoi"))) == [
            'mcpServers.fs.transportType: unknown value "stdoi"; expected one of "stdio", "sse",'
            ' "streamable-http", "inline" — did you mean "stdio"?'
        ]

    def test_a_missing_required_key_says_what_to_add(self) -> None:
        document = with_servers(fs=stdio_server(serviceAuths=[{"type": "basic", "password": "pw"}]))

        assert problems(document) == [
            'mcpServers.fs.serviceAuths[0].username: missing required key — add "username": "admin"'
        ]

    def test_a_wrong_type_says_what_was_expected(self) -> None:
        document = {
            "proxy": {"sessions": {"maxPerUser": "ten"}},
            "mcpServers": {"fs": stdio_server(args="-y")},
        }

        assert problems(document) == [
            "proxy.sessions.maxPerUser: expected a whole number, got a string",
            "mcpServers.fs.args: expected a list, got a string",
        ]

    def test_an_invalid_service_name_is_reported(self) -> None:
        assert problems(with_servers(**{"my server": stdio_server(), "-x": stdio_server()})) == [
            'mcpServers["my server"]: is not a valid service name: use letters, digits, "_" and "-",'
            ' starting with a letter or digit — rename the service, e.g. "my-server"',
            'mcpServers["-x"]: is not a valid service name: use letters, digits, "_" and "-",'
            ' starting with a letter or digit — rename the service, e.g. "x"',
        ]

    @pytest.mark.parametrize("name", sorted(RESERVED_SERVICE_NAMES))
    def test_a_reserved_service_name_is_reported(self, name: str) -> None:
        [problem] = problems(with_servers(**{name: stdio_server()}))

        assert problem.endswith(
            f": is a reserved name: the gateway serves its own pages at /{name}"
            f' — rename the service, e.g. "{name}-mcp"'
        )

    def test_reserved_names_are_refused_in_any_case(self) -> None:
        assert problems(with_servers(OAuth=stdio_server())) == [
            "mcpServers.OAuth: is a reserved name: the gateway serves its own pages at /oauth"
            ' — rename the service, e.g. "OAuth-mcp"'
        ]

    def test_every_problem_is_reported_at_once(self) -> None:
        document = {
            "proxy": {"baseURL": "localhost:8080", "addr": "8080", "sessions": {"timeout": "soon"}},
            "mcpServers": {
                "notion": stdio_server(env={"NOTION_TOKEN": {"$env": "NOTION_TOKEN"}}),
                "fs": stdio_server(
                    transportType="stdoi", serviceAuths=[{"type": "bearer", "tokens": ["a", ""]}]
                ),
                "admin": stdio_server(),
                "web": {"transportType": "sse"},
            },
        }

        assert problems(document) == [
            "mcpServers.notion.env.NOTION_TOKEN: environment variable NOTION_TOKEN is not set"
            " — set NOTION_TOKEN where mcp-front runs",
            'proxy.baseURL: must be an absolute http:// or https:// URL, got "localhost:8080"'
            ' — for example "https://mcp.example.com"',
            'proxy.addr: must be "host:port" or ":port", got "8080"'
            ' — for example ":8080", "127.0.0.1:9000" or "[::1]:9000"',
            'proxy.sessions.timeout: expected a duration such as "90s" or "1h30m", got "soon"'
            ' — units are h, m, s, ms, us and ns; for example "36h" for a day and a half',
            'mcpServers.fs.transportType: unknown value "stdoi"; expected one of "stdio", "sse",'
            ' "streamable-http", "inline" — did you mean "stdio"?',
            "mcpServers.fs.serviceAuths[0].tokens[1]: must not be empty",
            "mcpServers.admin: is a reserved name: the gateway serves its own pages at /admin"
            ' — rename the service, e.g. "admin-mcp"',
            'mcpServers.web.url: is required with "transportType": "sse" — for example "http://localhost:3000/sse"',
        ]

    def test_the_report_has_a_header_and_one_issue_per_line(self) -> None:
        error = ConfigError(
            [ConfigIssue("proxy.addr", "is wrong", "fix it"), ConfigIssue("", "whole file")], source="c.json"
        )

        assert (
            str(error)
            == "invalid configuration in c.json (2 problems):\n  proxy.addr: is wrong — fix it\n  whole file"
        )


class TestSecretsStaySecret:
    SECRET = "s3cr3t-v4lue-never-shown"

    def test_values_from_the_environment_are_never_quoted(self) -> None:
        document = {
            "proxy": {
                "baseURL": {"$env": "LEAK"},
                "addr": {"$env": "LEAK"},
                "sessions": {"timeout": {"$env": "LEAK"}},
            },
            "mcpServers": {
                "fs": stdio_server(transportType={"$env": "LEAK"}, env={"X": {"$env": "LEAK"}}),
                "web": {"transportType": "sse", "url": {"$env": "LEAK"}},
            },
        }

        with pytest.raises(ConfigError) as raised:
            load_config(document, environ={"LEAK": self.SECRET})

        assert self.SECRET not in str(raised.value)
        assert self.SECRET not in repr(raised.value.issues)
        assert "proxy.baseURL: must be an absolute http:// or https:// URL — for example" in str(raised.value)

    def test_credential_fields_are_never_quoted_even_when_literal(self) -> None:
        document = with_servers(
            fs=stdio_server(
                serviceAuths=[{"type": "basic", "username": "u", "password": ["not", self.SECRET]}]
            )
        )

        report = problems(document)

        assert report == ["mcpServers.fs.serviceAuths[0].password: expected a string, got a list"]

    def test_secrets_are_masked_in_the_repr_and_dump_of_a_config(self) -> None:
        document = with_servers(
            fs=stdio_server(
                env={"TOKEN": {"$env": "LEAK"}},
                serviceAuths=[
                    {"type": "bearer", "tokens": [self.SECRET]},
                    {"type": "basic", "username": "u", "password": self.SECRET},
                ],
            )
        )

        config = load_config(document, environ={"LEAK": self.SECRET})

        assert self.SECRET not in repr(config)
        assert self.SECRET not in str(config)
        assert self.SECRET not in config.model_dump_json()

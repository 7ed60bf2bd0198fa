from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from mcp_front.config import (
    ConfigError,
    ServerConfig,
    UserTokenTemplate,
    load_config,
    render_principal_placeholders,
)

from .support import problems, stdio_server, with_servers


def _server(document: dict[str, object], environ: dict[str, str], name: str = "svc") -> ServerConfig:
    return load_config(document, environ=environ).mcp_servers[name]


class TestEnvironmentReferences:
    def test_a_value_comes_from_the_environment_as_a_secret(self) -> None:
        document = with_servers(svc=stdio_server(env={"API_KEY": {"$env": "API_KEY"}}))

        server = _server(document, {"API_KEY": "k-123"})

        assert isinstance(server.env["API_KEY"], SecretStr)
        assert server.env["API_KEY"].get_secret_value() == "k-123"

    def test_a_plain_field_takes_the_value_as_text(self) -> None:
        document = with_servers(
            svc={"transportType": "sse", "url": {"$env": "BACKEND_URL"}, "timeout": {"$env": "TIMEOUT"}}
        )

        server = _server(document, {"BACKEND_URL": "http://backend:3000/sse", "TIMEOUT": "30s"})

        assert server.url == "http://backend:3000/sse"
        assert server.timeout is not None
        assert server.timeout.total_seconds() == 30

    def test_matching_quotes_around_the_value_are_dropped(self) -> None:
        document = with_servers(svc=stdio_server(env={"A": {"$env": "A"}, "B": {"$env": "B"}}))

        env = _server(document, {"A": '"quoted"', "B": "'unbalanced"}).env

        assert {
            key: value.get_secret_value() for key, value in env.items() if isinstance(value, SecretStr)
        } == {
            "A": "quoted",
            "B": "'unbalanced",
        }

    def test_a_missing_variable_is_an_error_at_the_key_that_uses_it(self) -> None:
        document = with_servers(notion=stdio_server(env={"NOTION_TOKEN": {"$env": "NOTION_TOKEN"}}))

        assert problems(document) == [
            "mcpServers.notion.env.NOTION_TOKEN: environment variable NOTION_TOKEN is not set"
            " — set NOTION_TOKEN where mcp-front runs"
        ]

    def test_an_empty_variable_is_an_error(self) -> None:
        document = with_servers(notion=stdio_server(env={"NOTION_TOKEN": {"$env": "NOTION_TOKEN"}}))

        assert problems(document, {"NOTION_TOKEN": ""}) == [
            "mcpServers.notion.env.NOTION_TOKEN: environment variable NOTION_TOKEN is empty"
            " — give NOTION_TOKEN a value"
        ]

    def test_the_process_environment_is_the_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MCP_FRONT_TEST_COMMAND", "from-process-env")
        document = with_servers(svc=stdio_server(command={"$env": "MCP_FRONT_TEST_COMMAND"}))

        assert load_config(document).mcp_servers["svc"].command == os.environ["MCP_FRONT_TEST_COMMAND"]


class TestFileReferences:
    def test_a_relative_path_is_read_from_the_config_files_folder(self, tmp_path: Path) -> None:
        (tmp_path / "secrets").mkdir()
        (tmp_path / "secrets" / "token").write_text("file-token\n")
        config = tmp_path / "config.json"
        config.write_text(
            '{"mcpServers": {"svc": {"transportType": "stdio", "command": "x",'
            ' "serviceAuths": [{"type": "bearer", "tokens": [{"$file": "secrets/token"}]}]}}}'
        )

        auth = load_config(config, environ={}).mcp_servers["svc"].service_auths[0]

        assert auth.type == "bearer"
        assert [token.get_secret_value() for token in auth.tokens] == ["file-token"]

    def test_only_one_trailing_newline_is_dropped(self, tmp_path: Path) -> None:
        secret = tmp_path / "value"
        secret.write_text("line one\nline two\n\n")
        document = with_servers(svc=stdio_server(env={"V": {"$file": str(secret)}}))

        value = _server(document, {}).env["V"]

        assert isinstance(value, SecretStr)
        assert value.get_secret_value() == "line one\nline two\n"

    def test_a_missing_file_is_an_error(self, tmp_path: Path) -> None:
        config = tmp_path / "config.json"
        config.write_text('{"proxy": {"auth": {"jwtSecret": {"$file": "jwt.key"}}}}')

        with pytest.raises(ConfigError) as raised:
            load_config(config, environ={})

        assert (
            str(raised.value).splitlines()[1]
            == f"  proxy.auth.jwtSecret: file {tmp_path / 'jwt.key'} does not exist"
        )

    def test_an_unreadable_file_is_an_error(self, tmp_path: Path) -> None:
        document = with_servers(svc=stdio_server(env={"V": {"$file": str(tmp_path)}}))

        [problem] = problems(document)

        assert problem.startswith(f"mcpServers.svc.env.V: cannot read file {tmp_path}: ")


class TestUserTokenReferences:
    def test_a_template_becomes_a_user_token_template(self) -> None:
        document = with_servers(
            linear={
                "transportType": "streamable-http",
                "url": {"$userToken": "https://mcp.linear.app/mcp?key={{token}}"},
                "headers": {"Authorization": {"$userToken": "Bearer {{token}}"}},
                "requiresUserToken": True,
                "userAuthentication": {"type": "manual", "displayName": "Linear", "instructions": "Paste it"},
            },
            notion=stdio_server(
                args=["--token", {"$userToken": "{{token}}"}],
                env={"NOTION_TOKEN": {"$userToken": "{{token}}"}},
                requiresUserToken=True,
                userAuthentication={"type": "manual", "displayName": "Notion", "instructions": "Paste it"},
            ),
            proxy_auth_placeholder=stdio_server(),
        )
        document["proxy"] = {"auth": _minimal_auth()}

        config = load_config(document, environ={"JWT": "j" * 32, "KEY": "k" * 32, "IDP_SECRET": "s"})
        linear, notion = config.mcp_servers["linear"], config.mcp_servers["notion"]

        assert linear.headers["Authorization"] == UserTokenTemplate("Bearer {{token}}")
        assert isinstance(linear.url, UserTokenTemplate)
        assert linear.url.render("abc") == "https://mcp.linear.app/mcp?key=abc"
        assert notion.args == ["--token", UserTokenTemplate("{{token}}")]
        assert notion.env == {"NOTION_TOKEN": UserTokenTemplate("{{token}}")}

    def test_a_template_anywhere_else_is_an_error(self) -> None:
        document = {
            "proxy": {"name": {"$userToken": "{{token}}"}},
            "mcpServers": {"svc": stdio_server(command={"$userToken": "{{token}}"})},
        }

        assert problems(document) == [
            'proxy.name: "$userToken" is only allowed in a server\'s args, env, url and headers'
            " — use a literal value, $env or $file here",
            'mcpServers.svc.command: "$userToken" is only allowed in a server\'s args, env, url and headers'
            " — use a literal value, $env or $file here",
        ]

    def test_a_template_needs_the_token_placeholder(self) -> None:
        document = with_servers(svc=stdio_server(env={"T": {"$userToken": "Bearer {token}"}}))

        assert problems(document) == [
            'mcpServers.svc.env.T: a "$userToken" template must contain {{token}}'
            ' — for example {"$userToken": "Bearer {{token}}"}'
        ]

    def test_a_template_needs_requires_user_token(self) -> None:
        document = with_servers(svc=stdio_server(env={"T": {"$userToken": "{{token}}"}}))

        assert problems(document) == [
            'mcpServers.svc.env.T: $userToken needs "requiresUserToken": true on this server'
            ' — add "requiresUserToken": true and a "userAuthentication" block'
        ]

    def test_render_substitutes_the_token(self) -> None:
        assert UserTokenTemplate("Bearer {{token}}").render("t0k") == "Bearer t0k"

    def test_a_template_without_placeholder_cannot_be_built(self) -> None:
        with pytest.raises(ValueError, match="must contain"):
            UserTokenTemplate("Bearer")

    def test_a_template_dumps_back_to_its_reference(self) -> None:
        server = ServerConfig(
            transport_type="stdio",
            command="x",
            env={"T": UserTokenTemplate("{{token}}")},
            requires_user_token=True,
            user_authentication={"type": "manual", "display_name": "X", "instructions": "Paste it"},
        )

        dumped = server.model_dump(mode="json", by_alias=True)

        assert dumped["env"] == {"T": {"$userToken": "{{token}}"}}
        assert ServerConfig.model_validate(dumped) == server


class TestReferenceSyntax:
    def test_a_misspelled_reference_is_named(self) -> None:
        document = with_servers(svc=stdio_server(env={"A": {"$ENV": "A"}, "B": {"$enf": "B"}}))

        assert problems(document) == [
            'mcpServers.svc.env.A: unknown reference "$ENV" — did you mean "$env"?',
            'mcpServers.svc.env.B: unknown reference "$enf" — did you mean "$env"?',
        ]

    def test_a_reference_has_a_single_key(self) -> None:
        document = with_servers(svc=stdio_server(env={"A": {"$env": "A", "default": "x"}}))

        assert problems(document, {"A": "a"}) == [
            'mcpServers.svc.env.A: a "$env" reference cannot have other keys ("default") — remove them'
        ]

    def test_json_schema_keywords_are_not_references(self) -> None:
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}
        document = with_servers(
            tools={
                "transportType": "inline",
                "inline": {"tools": [{"name": "now", "command": "date", "inputSchema": schema}]},
            }
        )

        inline = _server(document, {}, "tools").inline

        assert inline is not None
        assert inline.tools[0].input_schema == {**schema, "additionalProperties": False}


class TestPrincipalPlaceholders:
    def test_known_placeholders_are_kept_for_the_backend(self) -> None:
        document = with_servers(
            svc=stdio_server(args=["--user={{principal.email}}"], env={"WHO": "{{principal.subject}}"})
        )

        server = _server(document, {})

        assert server.args == ["--user={{principal.email}}"]
        assert server.env == {"WHO": "{{principal.subject}}"}

    def test_an_unknown_placeholder_is_an_error_listing_the_known_ones(self) -> None:
        document = with_servers(
            svc=stdio_server(args=["--user={{principal.name}}"], env={"WHO": "{{ principal.email }}"})
        )

        assert problems(document) == [
            "mcpServers.svc.args[0]: unknown placeholder {{principal.name}}"
            " — use {{principal.email}} or {{principal.subject}}",
            "mcpServers.svc.env.WHO: unknown placeholder {{ principal.email }}"
            " — use {{principal.email}} or {{principal.subject}}",
        ]

    def test_placeholders_are_filled_in_for_a_caller(self) -> None:
        text = "--user={{principal.email}} --id={{principal.subject}}"

        assert render_principal_placeholders(text, subject="u-1", email="ada@example.com") == (
            "--user=ada@example.com --id=u-1"
        )
        assert render_principal_placeholders(text, subject="ci", email=None) == "--user= --id=ci"


def _minimal_auth() -> dict[str, object]:
    return {
        "kind": "oauth",
        "issuer": "https://mcp.example.com",
        "idp": {
            "provider": "google",
            "clientId": "client",
            "clientSecret": {"$env": "IDP_SECRET"},
            "redirectUri": "https://mcp.example.com/oauth/callback",
        },
        "allowedDomains": ["example.com"],
        "jwtSecret": {"$env": "JWT"},
        "encryptionKey": {"$env": "KEY"},
    }

"""How an inline tool's arguments are checked and filled into argv, env, URLs, headers and bodies."""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import quote

import httpx2
import pytest
from pydantic import SecretStr

from mcp_front.backends.inline_arguments import (
    ArgumentRefused,
    command_line,
    environment,
    http_headers,
    http_url,
    json_body,
    validation_problems,
)
from mcp_front.backends.inline_result import (
    TAIL_CHARACTERS,
    clean,
    error_result,
    output_result,
    redact,
    redaction_margin,
    tail,
)

HOSTILE = ["; rm -rf /", "$(id)", "`id`", "a\nb", "x' || true; '", "*", "~", "a b\tc", "|cat /etc/passwd"]


class TestCommandLine:
    @pytest.mark.parametrize("value", HOSTILE)
    def test_a_value_is_one_argv_element_as_it_is(self, value: str) -> None:
        assert command_line("tool", ["--name", "{{name}}"], {"name": value}) == ["tool", "--name", value]

    def test_values_other_than_strings_are_their_json_text(self) -> None:
        args = ["{{n}}", "{{f}}", "{{b}}", "{{z}}", "{{o}}", "{{a}}"]
        arguments = {"n": 3, "f": 1.5, "b": True, "z": None, "o": {"k": "v"}, "a": [1, "x"]}
        assert command_line("tool", args, arguments) == [
            "tool",
            "3",
            "1.5",
            "true",
            "null",
            '{"k":"v"}',
            '[1,"x"]',
        ]

    def test_an_element_of_only_an_absent_argument_is_dropped(self) -> None:
        assert command_line("tool", ["ls", "{{path}}", "end"], {}) == ["tool", "ls", "end"]

    def test_an_absent_argument_inside_an_element_is_empty(self) -> None:
        assert command_line("tool", ["--path={{path}}"], {}) == ["tool", "--path="]

    def test_text_around_placeholders_is_kept(self) -> None:
        assert command_line("tool", ["{{a}}-{{b}}.txt"], {"a": "x", "b": 2}) == ["tool", "x-2.txt"]

    @pytest.mark.parametrize("value", ["--exec", "-rf", "--output=/etc/passwd", "-", "-5"])
    def test_an_option_like_value_is_refused(self, value: str) -> None:
        with pytest.raises(ArgumentRefused, match='argument "name" starts with "-"'):
            command_line("tool", ["grep", "{{name}}"], {"name": value})

    def test_an_option_like_value_is_refused_through_an_empty_leading_value(self) -> None:
        with pytest.raises(ArgumentRefused, match='argument "b"'):
            command_line("tool", ["{{a}}{{b}}"], {"a": "", "b": "--exec"})

    def test_an_option_like_value_is_allowed_after_a_literal_double_dash(self) -> None:
        argv = command_line("tool", ["grep", "--", "{{pattern}}"], {"pattern": "--exec"})
        assert argv == ["tool", "grep", "--", "--exec"]

    def test_a_double_dash_after_a_left_out_element_does_not_end_the_options(self) -> None:
        args = ["-sh", "--exclude", "{{exclude}}", "--", "{{path}}"]
        # Without `exclude`, `--exclude` takes the "--" as its value: the path is an option again.
        with pytest.raises(ArgumentRefused, match='argument "path" starts with "-"'):
            command_line("du", args, {"path": "--files0-from=/etc/passwd"})
        assert command_line("du", args, {"path": "data"}) == ["du", "-sh", "--exclude", "--", "data"]
        with pytest.raises(ArgumentRefused, match='argument "path" starts with "-"'):
            command_line("du", args, {"exclude": "*.tmp", "path": "--odd-name"})
        given = command_line("du", args, {"exclude": "*.tmp", "path": "odd-name"})
        assert given == ["du", "-sh", "--exclude", "*.tmp", "--", "odd-name"]
        # An option's value left empty, or options made by the arguments, swallow it too.
        for template, values in (("-e{{pattern}}", {"pattern": ""}), ("-{{flags}}", {"flags": "e"})):
            with pytest.raises(ArgumentRefused, match='argument "file" starts with "-"'):
                command_line("grep", [template, "--", "{{file}}"], {**values, "file": "--version"})
        # Left out after the "--": the options had ended already.
        later = command_line("grep", ["--", "{{pattern}}", "{{file}}"], {"pattern": "-v"})
        assert later == ["grep", "--", "-v"]

    def test_a_dash_left_in_front_by_an_empty_argument_is_refused(self) -> None:
        args = ["-sh", "{{name}}-{{version}}"]
        with pytest.raises(ArgumentRefused, match=r'the arguments make "\{\{name\}\}-\{\{version\}\}" start'):
            command_line("du", args, {"version": "-files0-from=/etc/os-release"})
        with pytest.raises(ArgumentRefused, match="start with"):
            command_line("du", args, {"name": "", "version": "1"})
        assert command_line("du", args, {"name": "pkg", "version": "-1"}) == ["du", "-sh", "pkg--1"]

    def test_an_option_the_configuration_wrote_takes_any_value(self) -> None:
        assert command_line("head", ["-n{{count}}"], {"count": "-5"}) == ["head", "-n-5"]
        assert command_line("du", ["--exclude={{x}}"], {"x": "-y"}) == ["du", "--exclude=-y"]
        assert command_line("rm", ["-{{flags}}"], {"flags": "rf"}) == ["rm", "-rf"]
        assert command_line("tool", ["--{{name}}"], {"name": "verbose"}) == ["tool", "--verbose"]

    def test_a_value_cannot_turn_the_configurations_dash_into_a_long_option(self) -> None:
        with pytest.raises(ArgumentRefused, match='argument "flags" starts with "-"'):
            command_line("du", ["-{{flags}}"], {"flags": "-files0-from=/etc/passwd"})
        with pytest.raises(ArgumentRefused, match='argument "name" starts with "-"'):
            command_line("tool", ["--{{name}}"], {"name": "-x"})

    def test_a_double_dash_given_as_a_value_does_not_end_the_options(self) -> None:
        with pytest.raises(ArgumentRefused, match='argument "b"'):
            command_line("tool", ["{{a}}", "{{b}}"], {"a": "x", "b": "--"})

    def test_a_value_after_a_literal_dash_or_inside_an_option_is_allowed(self) -> None:
        argv = command_line("tool", ["-{{flag}}", "--name={{name}}"], {"flag": "v", "name": "-x"})
        assert argv == ["tool", "-v", "--name=-x"]

    def test_a_value_with_nul_is_refused(self) -> None:
        with pytest.raises(ArgumentRefused, match='argument "name" contains a NUL'):
            command_line("tool", ["{{name}}"], {"name": "a\0b"})

    def test_go_templates_stay_literal(self) -> None:
        argv = command_line("docker", ["ps", "--format", "{{.Names}}"], {})
        assert argv == ["docker", "ps", "--format", "{{.Names}}"]


class TestEnvironment:
    def test_templates_are_filled_secrets_revealed_and_recorded(self) -> None:
        secrets: list[str] = []
        env = environment(
            {"REGION": "{{region}}", "TOKEN": SecretStr("s3cr3t-value"), "OPT": "{{opt}}"},
            {"region": "eu-west-1"},
            secrets,
        )
        assert env == {"REGION": "eu-west-1", "TOKEN": "s3cr3t-value"}
        assert secrets == ["s3cr3t-value"]

    def test_a_secret_is_never_a_template(self) -> None:
        env = environment({"TOKEN": SecretStr("{{region}}")}, {"region": "x"}, [])
        assert env == {"TOKEN": "{{region}}"}


class TestHttp:
    @pytest.mark.parametrize(
        ("value", "encoded"),
        [
            ("a/b/c", "a%2Fb%2Fc"),
            ("x?admin=1", "x%3Fadmin%3D1"),
            ("x&y=2#frag", "x%26y%3D2%23frag"),
            ("über space", "%C3%BCber%20space"),
        ],
    )
    def test_url_values_are_percent_encoded(self, value: str, encoded: str) -> None:
        url = http_url("https://api.example.com/items/{{id}}?q={{id}}", {"id": value})
        assert url == f"https://api.example.com/items/{encoded}?q={encoded}"

    def test_a_url_whose_host_a_value_would_choose_is_refused(self) -> None:
        with pytest.raises(ArgumentRefused, match="change the server"):
            http_url("https://{{host}}/x", {"host": "evil.example"})

    @pytest.mark.parametrize("value", ["a\r\nX-Admin: 1", "a\nb", "a\rb"])
    def test_a_header_value_with_a_line_break_is_refused(self, value: str) -> None:
        with pytest.raises(ArgumentRefused, match='argument "trace" contains a line break'):
            http_headers({"X-Trace": "t-{{trace}}"}, {"trace": value}, [])

    def test_headers_are_filled_and_secrets_recorded(self) -> None:
        secrets: list[str] = []
        headers = http_headers(
            {"X-Trace": "t-{{trace}}", "Authorization": SecretStr("Bearer k3y-value")}, {"trace": 7}, secrets
        )
        assert headers == {"X-Trace": "t-7", "Authorization": "Bearer k3y-value"}
        assert secrets == ["Bearer k3y-value"]

    def test_a_body_template_keeps_types_and_fills_text(self) -> None:
        template: Any = {
            "query": "{{q}}",
            "limit": "{{limit}}",
            "filters": {"tags": "{{tags}}", "label": "tag:{{tags}}"},
            "optional": "{{missing}}",
            "list": ["{{limit}}", "{{missing}}", "literal"],
            "n": 1,
        }
        body = json_body(template, {"q": "$(id)", "limit": 5, "tags": ["a", "b"]})
        assert body == {
            "query": "$(id)",
            "limit": 5,
            "filters": {"tags": ["a", "b"], "label": 'tag:["a","b"]'},
            "list": [5, "literal"],
            "n": 1,
        }

    def test_a_body_of_one_absent_placeholder_is_null(self) -> None:
        assert json_body("{{missing}}", {}) is None


class TestValidation:
    SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 5}, "count": {"type": "integer"}},
        "required": ["name"],
        "additionalProperties": False,
    }

    def test_valid_arguments_have_no_problems(self) -> None:
        assert validation_problems(self.SCHEMA, {"name": "abc", "count": 2}) == []

    def test_each_problem_is_named(self) -> None:
        problems = validation_problems(self.SCHEMA, {"count": "two", "extra": 1})
        assert any("'name' is a required property" in problem for problem in problems)
        assert any(problem.startswith("arguments.count:") and "integer" in problem for problem in problems)
        assert any("'extra' was unexpected" in problem for problem in problems)


class TestResults:
    def test_a_json_object_is_also_structured_content(self) -> None:
        result = output_result('{"a": 1}\n')
        assert result == {
            "content": [{"type": "text", "text": '{"a": 1}\n'}],
            "isError": False,
            "structuredContent": {"a": 1},
        }

    @pytest.mark.parametrize("text", ["[1, 2]", "42", "plain text", '{"cut": '])
    def test_anything_else_is_text_only(self, text: str) -> None:
        assert "structuredContent" not in output_result(text)

    def test_truncated_output_is_not_structured(self) -> None:
        result = output_result('{"a": 1}', truncated=True)
        assert "structuredContent" not in result
        assert result["content"][-1]["text"] == "(output truncated)"

    def test_secrets_are_taken_out_of_results(self) -> None:
        secrets = ["s3cr3t-value", "abc"]
        assert output_result('{"t": "s3cr3t-value"}', secrets)["structuredContent"] == {"t": "…"}
        assert error_result("failed with s3cr3t-value", secrets)["content"][0]["text"] == "failed with …"
        # Values too short to be secrets are left alone rather than blanking ordinary text.
        assert redact("abcdef", secrets) == "abcdef"


class TestDotSegments:
    @pytest.mark.parametrize("value", [".", "..", "..."])
    def test_a_path_value_of_only_dots_is_refused(self, value: str) -> None:
        """Encoded or not, a dot segment may be resolved by the server behind: refused."""
        with pytest.raises(ArgumentRefused, match='argument "id" is only dots'):
            http_url("https://api.example.com/v1/users/{{id}}/profile", {"id": value})
        with pytest.raises(ArgumentRefused):
            http_url("https://api.example.com/v1/users/x{{id}}", {"id": value})

    @pytest.mark.parametrize("value", ["a/../b", "../admin", "x/./y", "..\\admin", "a\\..\\b", "x/.../y"])
    def test_a_path_value_holding_a_dot_segment_is_refused(self, value: str) -> None:
        """A server that decodes %2F or %5C before resolving dot segments would climb."""
        with pytest.raises(ArgumentRefused, match=r'holds a "\." or "\.\." segment'):
            http_url("https://api.example.com/v1/users/{{id}}", {"id": value})
        assert http_url("https://api.example.com/v1/find?q={{id}}", {"id": value}).startswith(
            "https://api.example.com/v1/find?q="
        )

    @pytest.mark.parametrize("value", [".", ".."])
    def test_a_query_value_of_only_dots_is_data(self, value: str) -> None:
        url = http_url("https://api.example.com/v1/find?path={{id}}", {"id": value})
        assert url == f"https://api.example.com/v1/find?path={value}"
        assert httpx2.URL(url).raw_path == f"/v1/find?path={value}".encode()

    @pytest.mark.parametrize("value", ["a.b", ".hidden", "v1.2", "..a"])
    def test_other_dots_stay(self, value: str) -> None:
        assert (
            http_url("https://api.example.com/x/{{id}}", {"id": value})
            == f"https://api.example.com/x/{value}"
        )


class TestHeaderCharacters:
    @pytest.mark.parametrize("value", ["é€", "\x01", "\x7f", "a\x1bb"])
    def test_a_header_value_outside_printable_ascii_is_refused(self, value: str) -> None:
        with pytest.raises(
            ArgumentRefused, match='argument "trace" contains a character other than printable'
        ):
            http_headers({"X-Trace": "t-{{trace}}"}, {"trace": value}, [])

    def test_printable_ascii_and_tabs_pass(self) -> None:
        assert http_headers({"X-T": "{{v}}"}, {"v": "a b\t~!"}, []) == {"X-T": "a b\t~!"}


class TestRedaction:
    SECRET: ClassVar[str] = 'p@ss/w"rd\\ü+1'

    def test_the_json_escaped_and_percent_encoded_forms_are_redacted(self) -> None:
        escaped = json.dumps(self.SECRET)[1:-1]
        encoded = quote(self.SECRET, safe="")
        unescaped = json.dumps(self.SECRET, ensure_ascii=False)
        text = f"raw {self.SECRET} json {escaped} url {encoded} json2 {unescaped}"
        assert redact(text, [self.SECRET]) == 'raw … json … url … json2 "…"'

    def test_the_tail_is_cut_after_redaction(self) -> None:
        secret = "sup3r-s3cret-t0ken"
        # The last 2000 characters start with all but the first character of the secret.
        text = "A" * 3000 + secret + "B" * (TAIL_CHARACTERS - len(secret) + 1)
        cut_tail = tail(text, [secret])
        assert secret[1:] not in cut_tail
        assert secret[-8:] not in cut_tail

    def test_captured_output_is_redacted_before_it_is_cut(self) -> None:
        secret = "sup3r-s3cret-t0ken"
        limit = 100
        # The secret straddles the limit; the capture keeps `redaction_margin` bytes more.
        data = ("A" * (limit - 5) + secret + "B" * 50).encode()[: limit + redaction_margin([secret])]
        text = clean(data, [secret], limit)
        assert secret[:5] not in text
        assert text == "A" * (limit - 5) + "…BB"  # cut to `limit` bytes: "…" takes three

    def test_the_margin_covers_the_longest_form(self) -> None:
        assert redaction_margin([]) == 0
        assert redaction_margin(["abc"]) == 0  # too short to be redacted at all
        assert redaction_margin(["a/b/c"]) == len(quote("a/b/c", safe=""))

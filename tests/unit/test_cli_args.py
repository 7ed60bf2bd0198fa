"""How `mcp-front` reads its command line, the Go version's flags included; no server starts."""

from __future__ import annotations

import argparse
import sys

import pytest

from mcp_front import __version__, cli


@pytest.fixture
def handled(monkeypatch: pytest.MonkeyPatch) -> list[argparse.Namespace]:
    """The arguments each command handler was called with, in place of running it."""
    calls: list[argparse.Namespace] = []

    def record(args: argparse.Namespace) -> int:
        calls.append(args)
        return 0

    for name in ("_serve", "_validate", "_init"):
        monkeypatch.setattr(cli, name, record)
    return calls


@pytest.mark.parametrize(
    "argv",
    [
        ["-config", "gateway.json"],
        ["-config=gateway.json"],
        ["--config", "gateway.json"],
        ["--config=gateway.json"],
        ["serve", "--config", "gateway.json"],
        ["serve", "--config=gateway.json"],
    ],
    ids=" ".join,
)
def test_config_flag_alone_means_serve(argv: list[str], handled: list[argparse.Namespace]) -> None:
    assert cli.main(argv) == 0
    [args] = handled
    assert args.command == "serve"
    assert args.config == "gateway.json"
    assert (args.host, args.port, args.log_level, args.log_format) == (None, None, "info", "text")


@pytest.mark.parametrize(
    "argv",
    [
        ["-config", "gateway.json", "--port", "9000", "--log-format", "json", "--log-level", "debug"],
        ["-config=gateway.json", "--port", "9000", "--log-format", "json", "--log-level", "debug"],
    ],
    ids=["separate value", "joined value"],
)
def test_go_style_config_keeps_the_serve_options_after_it(
    argv: list[str], handled: list[argparse.Namespace]
) -> None:
    assert cli.main(argv) == 0
    [args] = handled
    assert (args.command, args.config) == ("serve", "gateway.json")
    assert (args.port, args.log_format, args.log_level) == (9000, "json", "debug")


def test_config_path_with_an_equals_sign_is_kept_whole(handled: list[argparse.Namespace]) -> None:
    assert cli.main(["-config=conf/a=b.json"]) == 0
    assert handled[0].config == "conf/a=b.json"


@pytest.mark.parametrize("flag", ["-version", "--version"])
def test_version_prints_the_package_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([flag])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"mcp-front {__version__}\n"


def test_no_command_prints_help_and_returns_usage_error(
    capsys: pytest.CaptureFixture[str], handled: list[argparse.Namespace]
) -> None:
    assert cli.main([]) == cli.EXIT_USAGE == 2
    output = capsys.readouterr()
    assert output.out == ""
    assert output.err.startswith("usage: mcp-front")
    for command in ("serve", "validate", "init"):
        assert command in output.err
    assert handled == []


def test_arguments_come_from_sys_argv_by_default(
    monkeypatch: pytest.MonkeyPatch, handled: list[argparse.Namespace]
) -> None:
    monkeypatch.setattr(sys, "argv", ["mcp-front", "-config", "from-argv.json"])
    assert cli.main() == 0
    assert handled[0].config == "from-argv.json"


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["serve"], "the following arguments are required: --config"),
        (["-config"], "argument --config: expected one argument"),
        (["-config="], "argument --config: expected one argument"),
        (["validate"], "the following arguments are required: --config"),
        (["serve", "--config", "c.json", "--port", "eighty"], "argument --port: invalid int value"),
        (["serve", "--config", "c.json", "--log-format", "xml"], "argument --log-format: invalid choice"),
        (["serve", "--config", "c.json", "--log-level", "trace"], "argument --log-level: invalid choice"),
        (["deploy"], "argument COMMAND: invalid choice: 'deploy'"),
        (["serve", "--config", "c.json", "--unknown"], "unrecognized arguments: --unknown"),
    ],
)
def test_bad_arguments_exit_with_usage_error(
    argv: list[str],
    complaint: str,
    capsys: pytest.CaptureFixture[str],
    handled: list[argparse.Namespace],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err
    assert handled == []


def test_go_flags_only_count_in_first_position(handled: list[argparse.Namespace]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["validate", "-config", "c.json"])
    assert exited.value.code == 2
    assert handled == []


def test_validate_reads_its_config(handled: list[argparse.Namespace]) -> None:
    assert cli.main(["validate", "--config", "c.json"]) == 0
    assert (handled[0].command, handled[0].config) == ("validate", "c.json")


@pytest.mark.parametrize(
    ("argv", "path", "force"),
    [
        (["init"], "config.json", False),
        (["init", "mine.json"], "mine.json", False),
        (["init", "mine.json", "--force"], "mine.json", True),
        (["init", "--force"], "config.json", True),
    ],
)
def test_init_takes_an_optional_path_and_force(
    argv: list[str], path: str, force: bool, handled: list[argparse.Namespace]
) -> None:
    assert cli.main(argv) == 0
    [args] = handled
    assert (args.command, args.path, args.force) == ("init", path, force)


def test_the_handler_result_is_the_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_validate", lambda args: cli.EXIT_INVALID)
    assert cli.main(["validate", "--config", "c.json"]) == 1

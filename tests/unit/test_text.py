"""Text from outside, shown safely: in log lines, whatever their format."""

from __future__ import annotations

import io
import json
import logging

import pytest

from mcp_front.logs import JSONFormatter, TextFormatter
from mcp_front.text import escaped, is_plain

FORGERIES = [
    "Claude\n2026-01-01 INFO mcp_front.auth: client admin registered",
    "App\u202eexe.txt",
    "bell\x07 and \x1b[31mred",
    "cr\rlf",
    "iso\u2066late\u2069",
    "line\u2028separator",
]


@pytest.mark.parametrize("value", FORGERIES)
def test_escaped_text_is_one_visible_line(value: str) -> None:
    text = escaped(value)
    assert is_plain(text)
    assert "\n" not in text
    assert "\r" not in text


def test_plain_text_is_left_as_it_is_and_long_text_is_cut() -> None:
    assert escaped("Claude Desktop (été)") == "Claude Desktop (été)"
    assert escaped("x" * 600) == "x" * 512 + "…"
    assert escaped("x" * 600, limit=None) == "x" * 600


@pytest.mark.parametrize("formatter", [TextFormatter("%(levelname)s %(message)s"), JSONFormatter()])
@pytest.mark.parametrize("value", FORGERIES)
def test_a_log_line_cannot_be_forged_in_either_format(formatter: logging.Formatter, value: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("mcp_front.test_text")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.warning("client %s registered", value)
    output = stream.getvalue()
    assert output.count("\n") == 1
    assert is_plain(output.rstrip("\n"))
    if isinstance(formatter, JSONFormatter):
        assert json.loads(output)["message"] == f"client {value} registered"


def test_a_traceback_keeps_its_lines_and_escapes_what_it_quotes() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter("%(message)s"))
    logger = logging.getLogger("mcp_front.test_traceback")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        raise ValueError("netloc 'a\u202eFORGED\u2028LINE\u0085NEL' is invalid")
    except ValueError:
        logger.exception("failed")
    output = stream.getvalue()
    assert "Traceback (most recent call last):" in output
    assert output.splitlines()[0] == "failed"
    assert all(is_plain(line) for line in output.splitlines())
    assert "\\u202eFORGED" in output

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from mcp_front.config import Duration, PositiveDuration, SessionsConfig, format_duration, parse_duration

from .support import problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2h45m30s", timedelta(hours=2, minutes=45, seconds=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        (".5s", timedelta(milliseconds=500)),
        ("1500us", timedelta(microseconds=1500)),
        ("1500µs", timedelta(microseconds=1500)),
        ("1500μs", timedelta(microseconds=1500)),
        ("2000ns", timedelta(microseconds=2)),
        ("1m1ms", timedelta(minutes=1, milliseconds=1)),
        ("0", timedelta(0)),
        ("-1m", timedelta(minutes=-1)),
        ("720h", timedelta(days=30)),
    ],
)
def test_parse_duration_reads_go_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "1d", "30 minutes", "1h 30m", "h", "1.2.3s", "s1", "--1s"])
def test_parse_duration_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match=r'expected a duration such as "90s" or "1h30m"'):
        parse_duration(text)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(hours=24), "24h"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=7), "7µs"),
        (timedelta(seconds=2, milliseconds=250), "2.25s"),
        (timedelta(minutes=-5), "-5m"),
    ],
)
def test_format_duration_writes_go_durations(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


@given(st.timedeltas(min_value=timedelta(days=-10_000), max_value=timedelta(days=10_000)))
def test_durations_round_trip(duration: timedelta) -> None:
    assert parse_duration(format_duration(duration)) == duration


class _Timeouts(BaseModel):
    any_length: Duration = timedelta(0)
    positive: PositiveDuration = timedelta(seconds=1)


def test_duration_fields_accept_go_strings_and_timedeltas() -> None:
    timeouts = _Timeouts.model_validate({"any_length": "0s", "positive": "1h30m"})
    assert timeouts.positive == timedelta(hours=1, minutes=30)
    assert _Timeouts(positive=timedelta(minutes=2)).positive == timedelta(minutes=2)


def test_duration_fields_serialise_to_go_strings() -> None:
    dumped = _Timeouts(positive=timedelta(seconds=90)).model_dump(mode="json")
    assert dumped == {"any_length": "0s", "positive": "1m30s"}
    assert _Timeouts(positive=timedelta(seconds=90)).model_dump()["positive"] == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (30, 'expected a duration such as "90s" or "1h30m"'),
        ("30 minutes", 'expected a duration such as "90s" or "1h30m"'),
        ("-1s", "must not be negative"),
        ("0s", "must be longer than zero"),
        (None, 'expected a duration such as "90s" or "1h30m"'),
    ],
)
def test_duration_fields_explain_bad_values(value: object, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _Timeouts.model_validate({"positive": value})
    assert [error["msg"] for error in raised.value.errors()] == [message]


def test_a_bad_duration_in_a_file_is_reported_with_its_value_and_units() -> None:
    document = {"proxy": {"sessions": {"timeout": "30min", "cleanupInterval": 60}}}

    assert problems(document) == [
        'proxy.sessions.timeout: expected a duration such as "90s" or "1h30m", got "30min"'
        ' — units are h, m, s, ms, us and ns; for example "36h" for a day and a half',
        'proxy.sessions.cleanupInterval: expected a duration such as "90s" or "1h30m", got 60'
        ' — a bare number has no unit; for 60 seconds, write "60s"',
    ]


def test_session_durations_have_their_documented_defaults() -> None:
    sessions = SessionsConfig()
    assert (sessions.timeout, sessions.cleanup_interval, sessions.retention) == (
        timedelta(minutes=30),
        timedelta(minutes=1),
        timedelta(hours=24),
    )

"""Go-style duration strings ("90s", "1h30m", "500ms") as `datetime.timedelta`.

The configuration format comes from the Go mcp-front, whose durations follow Go's
`time.ParseDuration`. The same syntax is accepted here so existing files keep working.
`timedelta` counts whole microseconds, so finer values ("1500ns") are rounded.
"""

from __future__ import annotations

import re
from datetime import timedelta
from fractions import Fraction
from typing import Annotated, Any, Final

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from mcp_front.config.errors import config_value_error

DURATION_HINT: Final = 'expected a duration such as "90s" or "1h30m"'
_UNITS_HINT: Final = 'units are h, m, s, ms, us and ns; for example "36h" for a day and a half'

_NANOSECONDS_PER_UNIT: Final = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN, what Go prints
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU, what people type
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
}
_NUMBER: Final = r"(?:\d+\.?\d*|\.\d+)"
# Longer units first, so that "ms" is not read as "m" followed by a stray "s".
_UNIT: Final = "|".join(sorted(_NANOSECONDS_PER_UNIT, key=len, reverse=True))
_COMPONENT: Final = re.compile(rf"({_NUMBER})({_UNIT})")
_DURATION: Final = re.compile(rf"[+-]?(?:{_NUMBER}(?:{_UNIT}))+")

_MICROSECONDS_PER_SECOND: Final = 1_000_000
_MICROSECONDS_PER_MINUTE: Final = 60 * _MICROSECONDS_PER_SECOND
_MICROSECONDS_PER_HOUR: Final = 60 * _MICROSECONDS_PER_MINUTE


def parse_duration(text: str) -> timedelta:
    """Parse a Go duration string: a sequence of numbers with units, such as "1h30m" or "1.5s".

    Accepts the units h, m, s, ms, us (or µs) and ns, fractions ("1.5h"), a leading sign,
    and a bare "0". Raises `ValueError` for anything else.
    """
    if text in {"0", "+0", "-0"}:
        return timedelta(0)
    if not _DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration: {DURATION_HINT} ({_UNITS_HINT})")
    nanoseconds = sum(
        (Fraction(number) * _NANOSECONDS_PER_UNIT[unit] for number, unit in _COMPONENT.findall(text)),
        start=Fraction(0),
    )
    sign = -1 if text.startswith("-") else 1
    try:
        return timedelta(microseconds=sign * round(nanoseconds / 1_000))
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def format_duration(value: timedelta) -> str:
    """Write a duration the way Go does, without its zero components: "1h30m", "1m30s", "500ms"."""
    microseconds = (value.days * 86_400 + value.seconds) * _MICROSECONDS_PER_SECOND + value.microseconds
    if microseconds == 0:
        return "0s"
    sign = "-" if microseconds < 0 else ""
    microseconds = abs(microseconds)
    if microseconds < _MICROSECONDS_PER_SECOND:
        if microseconds < 1_000:
            return f"{sign}{microseconds}µs"
        return f"{sign}{_decimal(microseconds, 1_000)}ms"
    hours, rest = divmod(microseconds, _MICROSECONDS_PER_HOUR)
    minutes, rest = divmod(rest, _MICROSECONDS_PER_MINUTE)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if rest:
        parts.append(f"{_decimal(rest, _MICROSECONDS_PER_SECOND)}s")
    return sign + "".join(parts)


def _decimal(count: int, per_unit: int) -> str:
    """`count / per_unit` written exactly, without trailing zeros: 1500, 1000 → "1.5"."""
    whole, fraction = divmod(count, per_unit)
    if not fraction:
        return str(whole)
    digits = len(str(per_unit)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")


class _GoDurationSchema:
    """Pydantic schema for durations written as Go strings in the configuration file."""

    def __init__(self, *, allow_zero: bool) -> None:
        self.allow_zero = allow_zero

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(format_duration, when_used="json"),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": f"^{_DURATION.pattern}$", "examples": ["90s", "1h30m"]}

    def _validate(self, value: object) -> timedelta:
        if isinstance(value, timedelta):
            duration = value
        elif isinstance(value, str):
            try:
                duration = parse_duration(value)
            except ValueError:
                raise config_value_error(
                    "duration", DURATION_HINT, fix=_UNITS_HINT, show_input=True
                ) from None
        elif isinstance(value, int | float) and not isinstance(value, bool):
            # A bare number is ambiguous: Go reads nanoseconds where people mean seconds.
            raise config_value_error(
                "duration",
                DURATION_HINT,
                fix=f'a bare number has no unit; for {value} seconds, write "{value}s"',
                show_input=True,
            )
        else:
            raise config_value_error("duration", DURATION_HINT)
        if duration < timedelta(0):
            raise config_value_error("duration", "must not be negative", show_input=True)
        if duration == timedelta(0) and not self.allow_zero:
            raise config_value_error("duration", "must be longer than zero", show_input=True)
        return duration


Duration = Annotated[timedelta, _GoDurationSchema(allow_zero=True)]
"""A non-negative `timedelta`, written in the file as a Go duration string such as "90s"."""

PositiveDuration = Annotated[timedelta, _GoDurationSchema(allow_zero=False)]
"""Like `Duration`, for timeouts and intervals, where zero makes no sense."""

"""Server-sent events decoded from bytes however the bytes are cut."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_front.backends.streamable_http.event_stream import (
    MAX_EVENT_ID,
    MAX_LINE,
    EventStreamDecoder,
    EventStreamTooLarge,
    ServerSentEvent,
)

STREAM = (
    "\ufeff: a comment\r\n"
    "event: message\r\n"
    'data: {"a": "é€"}\r\n'
    "id: 1\r\n"
    "\r\n"
    "data: first line\n"
    "data: second line\n"
    "retry: 1500\n"
    "\n"
    "id: priming\r"
    "\r"
    "data:no space\n"
    "data\n"
    "\n"
    "event: endpoint\n"
    "data: /message?sessionId=1\n"
    "\n"
    "data: incomplete"
).encode()

EXPECTED = [
    ServerSentEvent("message", '{"a": "é€"}', "1"),
    ServerSentEvent("message", "first line\nsecond line", retry=1500),
    ServerSentEvent("message", "", "priming"),
    ServerSentEvent("message", "no space\n"),
    ServerSentEvent("endpoint", "/message?sessionId=1"),
]


def decode_in_pieces(data: bytes, cuts: list[int]) -> list[ServerSentEvent]:
    decoder = EventStreamDecoder()
    events: list[ServerSentEvent] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        events.extend(decoder.feed(data[start:cut]))
        start = cut
    return events


def test_a_stream_decodes_into_its_events() -> None:
    assert decode_in_pieces(STREAM, []) == EXPECTED


def test_byte_by_byte_gives_the_same_events() -> None:
    assert decode_in_pieces(STREAM, list(range(len(STREAM)))) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_cut_gives_the_same_events(cuts: list[int]) -> None:
    assert decode_in_pieces(STREAM, cuts) == EXPECTED


def test_a_retry_that_is_not_a_number_and_an_id_with_nul_are_ignored() -> None:
    events = EventStreamDecoder().feed(b"retry: soon\nid: a\x00b\ndata: x\n\n")
    assert events == [ServerSentEvent("message", "x")]


def test_an_empty_chunk_between_cr_and_lf_changes_nothing() -> None:
    decoder = EventStreamDecoder()
    events = [*decoder.feed(b"data: a\r"), *decoder.feed(b""), *decoder.feed(b"\ndata: b\n\n")]
    assert events == [ServerSentEvent("message", "a\nb")]


def test_a_retry_must_be_a_short_ascii_number() -> None:
    decoder = EventStreamDecoder()
    for retry in ("²", "٣", "9" * 5000, "1234567890", "-1", "1.5"):
        assert decoder.feed(f"retry: {retry}\ndata: x\n\n".encode()) == [ServerSentEvent("message", "x")]
    assert decoder.feed(b"retry: 999999999\ndata: x\n\n") == [
        ServerSentEvent("message", "x", retry=999999999)
    ]


def test_an_id_that_is_not_printable_ascii_or_too_long_is_ignored() -> None:
    decoder = EventStreamDecoder()
    for event_id in ("a\x1bb", "é", "a\x7f", "1" * (MAX_EVENT_ID + 1)):
        assert decoder.feed(f"id: {event_id}\ndata: x\n\n".encode()) == [ServerSentEvent("message", "x")]
    long_id = "s/" + "1" * (MAX_EVENT_ID - 2)
    assert decoder.feed(f"id: {long_id}\ndata: x\n\n".encode()) == [ServerSentEvent("message", "x", long_id)]


def test_an_unterminated_line_is_bounded() -> None:
    decoder = EventStreamDecoder(max_line=100)
    decoder.feed(b"data: " + b"x" * 90)
    with pytest.raises(EventStreamTooLarge):
        decoder.feed(b"x" * 10)


def test_a_line_completed_past_the_bound_is_refused() -> None:
    decoder = EventStreamDecoder(max_line=100)
    decoder.feed(b"data: " + b"x" * 90)
    with pytest.raises(EventStreamTooLarge):
        decoder.feed(b"x" * 10 + b"\n\n")


def test_an_events_data_is_bounded_across_lines() -> None:
    decoder = EventStreamDecoder(max_line=100)
    with pytest.raises(EventStreamTooLarge):
        decoder.feed(b"data: " + b"x" * 60 + b"\n" + b"data: " + b"x" * 60 + b"\n")


def test_the_default_bound_is_the_module_constant() -> None:
    decoder = EventStreamDecoder()
    piece = b"x" * (1024 * 1024)
    for _ in range(MAX_LINE // len(piece)):
        decoder.feed(piece)
    with pytest.raises(EventStreamTooLarge):
        decoder.feed(b"x")

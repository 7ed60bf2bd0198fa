"""Server-sent events decoded from bytes however the bytes are cut."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mcp_front.backends.event_stream import EventStreamDecoder, ServerSentEvent

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

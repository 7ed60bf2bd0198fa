import pytest
from starlette.datastructures import Headers

from mcp_front.transports import http


def headers(**values: str) -> Headers:
    return Headers({name.replace("_", "-"): value for name, value in values.items()})


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json, text/event-stream", True),
        ("text/event-stream;q=0.9, application/json", True),
        ("*/*", True),
        ("application/*, text/*", True),
        ("application/json", False),
        ("text/html", False),
        ("", False),
    ],
)
def test_accepts_requires_every_wanted_type(accept: str, expected: bool) -> None:
    assert http.accepts(headers(accept=accept), "application/json", "text/event-stream") is expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json, text/event-stream", False),
        ("text/event-stream, application/json", True),
        ("application/json;q=0.5, text/event-stream", True),
        ("text/event-stream;q=0.1, application/json", False),
        ("*/*", False),
    ],
)
def test_prefers_event_stream_by_quality_then_order(accept: str, expected: bool) -> None:
    assert http.prefers_event_stream(headers(accept=accept)) is expected


def test_json_content_type_allows_parameters_only() -> None:
    assert http.is_json_content(headers(content_type="application/json; charset=utf-8"))
    assert not http.is_json_content(headers(content_type="application/json-seq"))
    assert not http.is_json_content(headers())


def test_origin_policy() -> None:
    policy = http.OriginPolicy(["https://App.example.com:443", "http://localhost:6274"])
    assert policy.allows(headers())
    assert policy.allows(headers(origin="https://app.example.com"))
    assert policy.allows(headers(origin="http://localhost:6274"))
    assert not policy.allows(headers(origin="http://localhost:6275"))
    assert not policy.allows(headers(origin="https://app.example.com.evil.test"))
    assert not policy.allows(headers(origin="null"))
    assert not policy.allows(headers(origin="http://[::1]:bad"))


async def test_read_body_stops_past_the_limit() -> None:
    chunks = [{"type": "http.request", "body": b"a" * 600, "more_body": True}] * 3

    async def receive() -> dict[str, object]:
        return chunks.pop(0)

    with pytest.raises(http.BodyTooLarge):
        await http.read_body(receive, limit=1000)


def test_parse_message_errors_carry_the_request_id_when_valid() -> None:
    message, error = http.parse_message(b'{"jsonrpc":"2.0","id":5,"method":7}')
    assert message is None
    assert error is not None
    assert error.status_code == 400
    assert b'"id":5' in error.body
    assert b"-32600" in error.body

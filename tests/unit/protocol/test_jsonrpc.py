import pytest

from mcp_front.protocol import jsonrpc
from mcp_front.protocol.jsonrpc import InvalidMessage, MessageKind


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, MessageKind.REQUEST),
        ({"jsonrpc": "2.0", "id": "a", "method": "x", "params": {}}, MessageKind.REQUEST),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, MessageKind.NOTIFICATION),
        ({"jsonrpc": "2.0", "id": 1, "result": {}}, MessageKind.RESPONSE),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "m"}}, MessageKind.RESPONSE),
    ],
)
def test_classifies_messages(value: object, kind: MessageKind) -> None:
    assert jsonrpc.classify(value) is kind


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([{"jsonrpc": "2.0", "id": 1, "method": "x"}], "batches are not supported"),
        ("text", "must be a JSON object"),
        ({"id": 1, "method": "x"}, '"jsonrpc" must be "2.0"'),
        ({"jsonrpc": "2.0", "id": True, "method": "x"}, '"id" must be a string or an integer'),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "x"}, '"id" must be a string or an integer'),
        ({"jsonrpc": "2.0", "id": 1, "method": ""}, '"method" must be a non-empty string'),
        ({"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1]}, '"params" must be an object'),
        ({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {}}, "exactly one of"),
        ({"jsonrpc": "2.0"}, "exactly one of"),
    ],
)
def test_rejects_what_is_not_one_message(value: object, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        jsonrpc.classify(value)


def test_decode_turns_deep_nesting_into_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        jsonrpc.decode("[" * 100_000 + "]" * 100_000)


def test_progress_token_of_requests_and_notifications() -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"_meta": {"progressToken": "t"}}}
    notification = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 7}}
    assert jsonrpc.progress_token(request) == "t"
    assert jsonrpc.progress_token(notification) == 7
    assert jsonrpc.progress_token({"jsonrpc": "2.0", "id": 1, "method": "x"}) is None
    assert jsonrpc.progress_token({"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"_meta": []}}) is None


def test_error_response_shape() -> None:
    assert jsonrpc.error_response(3, -32600, "bad", {"k": 1}) == {
        "jsonrpc": "2.0",
        "id": 3,
        "error": {"code": -32600, "message": "bad", "data": {"k": 1}},
    }
    assert "data" not in jsonrpc.error_response(None, -1, "m")["error"]

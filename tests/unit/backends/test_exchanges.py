"""`ExchangeTable`: answers to their request, progress to its stream, the rest unsolicited."""

from __future__ import annotations

import itertools

import anyio
import pytest

from mcp_front.backends.base import BackendError
from mcp_front.backends.exchanges import ExchangeTable
from mcp_front.protocol.jsonrpc import MessageKind
from tests.support.sinks import Inbox


def table() -> tuple[ExchangeTable, Inbox]:
    unsolicited = Inbox()
    return ExchangeTable(unsolicited, itertools.count(1).__next__), unsolicited


async def test_answers_reach_their_request_whatever_the_order() -> None:
    exchanges, _ = table()
    first, second = exchanges.start(), exchanges.start()
    assert (first.backend_id, second.backend_id) == (1, 2)
    await exchanges.route({"jsonrpc": "2.0", "id": 2, "result": {"n": 2}}, MessageKind.RESPONSE)
    await exchanges.route({"jsonrpc": "2.0", "id": 1, "result": {"n": 1}}, MessageKind.RESPONSE)
    assert (await first.outcome())["result"] == {"n": 1}
    assert (await second.outcome())["result"] == {"n": 2}


async def test_progress_goes_to_its_request_only_while_it_runs() -> None:
    exchanges, unsolicited = table()
    related = Inbox()
    request = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"_meta": {"progressToken": "p"}}}
    progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "p"}}
    with exchanges.progress_to(request, related):
        await exchanges.route(progress, MessageKind.NOTIFICATION)
    await exchanges.route(progress, MessageKind.NOTIFICATION)
    assert related.messages == [progress]
    assert unsolicited.messages == [progress]


async def test_failing_a_channel_fails_only_its_requests() -> None:
    exchanges, _ = table()
    lost, kept = object(), object()
    on_lost, on_kept = exchanges.start(lost), exchanges.start(kept)
    exchanges.fail_all(BackendError("the stream broke"), channel=lost)
    with pytest.raises(BackendError, match="the stream broke"):
        await on_lost.outcome()
    assert not on_kept.settled
    await exchanges.route({"jsonrpc": "2.0", "id": on_kept.backend_id, "result": {}}, MessageKind.RESPONSE)
    with anyio.fail_after(1):
        assert (await on_kept.outcome())["result"] == {}


async def test_a_late_or_unknown_answer_is_dropped() -> None:
    exchanges, unsolicited = table()
    exchange = exchanges.start()
    exchanges.finish(exchange)
    await exchanges.route({"jsonrpc": "2.0", "id": exchange.backend_id, "result": {}}, MessageKind.RESPONSE)
    await exchanges.route({"jsonrpc": "2.0", "id": "x", "result": {}}, MessageKind.RESPONSE)
    assert not exchange.settled
    assert unsolicited.messages == []

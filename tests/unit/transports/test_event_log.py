"""`EventLog`: ids, replay after an id, and memory bounds."""

from __future__ import annotations

import collections

import anyio

from mcp_front.transports import event_log
from mcp_front.transports.event_log import EventLog


def message(n: int, size: int = 10) -> dict[str, object]:
    return {"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": n, "pad": "x" * size}}


def test_events_get_ids_and_replay_after_one() -> None:
    log = EventLog()
    stream = log.open()
    first = stream.record(None)
    assert first == b"id: 1/1\ndata: \n\n"
    events = [stream.record(message(n)) for n in range(3)]
    assert events[0].startswith(b"id: 1/2\nevent: message\ndata: {")
    found = log.find("1/2")
    assert found is not None
    assert found[0] is stream
    assert stream.after(found[1]) == events[1:]
    for unknown in ("2/1", "1", "a/b", "", "1/x"):
        assert log.find(unknown) is None


def test_a_stream_keeps_its_newest_events() -> None:
    stream = EventLog().open()
    for n in range(event_log.MAX_EVENTS_PER_STREAM + 10):
        stream.record(message(n))
    assert len(stream.events) == event_log.MAX_EVENTS_PER_STREAM
    assert stream.events[0][0] == 11


def test_a_session_forgets_its_oldest_streams_and_bytes() -> None:
    log = EventLog()
    streams = [log.open() for _ in range(event_log.MAX_STREAMS_PER_SESSION + 2)]
    assert log.find("1/1") is None
    big = event_log.MAX_BYTES_PER_SESSION // 4
    for stream in streams[-5:]:
        stream.record(message(0, size=big))
        stream.record(message(1, size=big))
    assert sum(stream.size for stream in streams[-5:]) <= event_log.MAX_BYTES_PER_SESSION
    assert [len(stream.events) for stream in streams[-5:]] == [0, 0, 0, 1, 2]


async def test_a_resumed_stream_gets_new_events_until_it_finishes() -> None:
    stream = EventLog().open()
    send, receive = anyio.create_memory_object_stream[bytes](10)
    stream.attach(send)
    live = stream.record(message(1))
    stream.finish()
    async with receive:
        assert [chunk async for chunk in receive] == [live]


def test_an_evicted_stream_still_delivers_but_keeps_nothing() -> None:
    log = EventLog()
    first = log.open()
    send, receive = anyio.create_memory_object_stream[bytes](10)
    first.attach(send)
    for _ in range(event_log.MAX_STREAMS_PER_SESSION):
        log.open()
    live = first.record(message(1))
    assert first.events == collections.deque()
    assert receive.receive_nowait() == live
    assert log.find(f"{first.number}/1") is None


async def test_a_later_resume_is_not_detached_by_an_earlier_ones_cleanup() -> None:
    stream = EventLog().open()
    earlier, _ = anyio.create_memory_object_stream[bytes](10)
    later, later_receive = anyio.create_memory_object_stream[bytes](10)
    stream.attach(earlier)
    stream.attach(later)
    stream.detach(earlier)
    event = stream.record(message(1))
    assert later_receive.receive_nowait() == event


def test_malformed_event_ids_are_not_found() -> None:
    log = EventLog()
    log.open()
    for bad in ("²/1", "1/" + "9" * 5000, "1/-1", "1/1/1"):
        assert log.find(bad) is None


def test_one_principal_cannot_hold_more_than_its_share_nor_evict_anothers() -> None:
    budget = event_log.EventBudget(total=6 * 1024 * 1024, per_principal=2 * 1024 * 1024)
    victim = budget.log("user:victim").open()
    victim.record(message(0, size=512 * 1024))
    kept_by_victim = budget.used_by("user:victim")
    attacker_logs = [budget.log("user:attacker") for _ in range(20)]
    for log in attacker_logs:
        stream = log.open()
        for n in range(4):
            stream.record(message(n, size=256 * 1024))
    assert budget.used_by("user:attacker") <= 2 * 1024 * 1024
    assert budget.used_by("user:victim") == kept_by_victim
    assert len(victim.events) == 1
    assert budget.used <= budget.total


def test_past_the_gateways_bound_an_event_is_delivered_but_not_kept() -> None:
    budget = event_log.EventBudget(total=1024 * 1024, per_principal=1024 * 1024)
    first = budget.log("user:a").open()
    first.record(message(0, size=900 * 1024))
    second = budget.log("user:b").open()
    send, receive = anyio.create_memory_object_stream[bytes](10)
    second.attach(send)
    live = second.record(message(1, size=300 * 1024))
    assert receive.receive_nowait() == live
    assert second.events == collections.deque()
    assert len(first.events) == 1
    assert budget.used <= budget.total


def test_a_closed_log_gives_its_memory_back() -> None:
    budget = event_log.EventBudget()
    log = budget.log("user:a")
    log.open().record(message(0, size=100_000))
    assert budget.used > 100_000
    log.close()
    assert budget.used == 0
    assert budget.used_by("user:a") == 0

"""Protocol revisions: a 2026-07-28 request is told by its envelope, and the handshake
revision a server answers with."""

from __future__ import annotations

from typing import Any

from mcp_front.protocol.jsonrpc import Message
from mcp_front.protocol.revisions import envelope_version, negotiated_version

ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def modern(method: str, request_id: int | str = 1, **params: Any) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": ENVELOPE}}


def is_enveloped(message: Message) -> bool:
    return envelope_version(message) is not None


def test_a_modern_message_is_told_by_its_envelope() -> None:
    assert is_enveloped(modern("tools/list"))
    assert not is_enveloped({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert not is_enveloped({"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"_meta": {}}})
    unhashable = {"io.modelcontextprotocol/protocolVersion": {"not": "a string"}}
    assert not is_enveloped({"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"_meta": unhashable}})


def test_initialize_is_answered_with_the_clients_revision_or_the_latest() -> None:
    assert negotiated_version("2025-06-18") == "2025-06-18"
    assert negotiated_version("2024-11-05") == "2024-11-05"
    assert negotiated_version("1999-01-01") == "2025-11-25"
    assert negotiated_version(None) == "2025-11-25"
    assert negotiated_version(["2025-06-18"]) == "2025-11-25"

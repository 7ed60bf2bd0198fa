from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mcp_front.audit import AuditEvent, AuditLog, AuditLogError, arguments_sha256
from mcp_front.auth.principal import Principal
from mcp_front.config import AuditConfig

ALICE = Principal(subject="u-1", email="alice@example.com", client_id="client-9")


def test_the_arguments_hash_is_of_canonical_json() -> None:
    expected = hashlib.sha256(b'{"a":[1,2],"b":"\xc3\xa9"}').hexdigest()

    assert arguments_sha256({"b": "é", "a": [1, 2]}) == expected


def test_an_event_serialises_every_field_in_a_stable_order() -> None:
    event = AuditEvent.of(ALICE, event="tool_call", service="db", outcome="ok", tool="query", duration_ms=1.5)
    moment = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)

    line = AuditEvent(**{**_fields(event), "time": moment}).to_json()

    assert line == (
        '{"time":"2025-01-02T03:04:05.678Z","event":"tool_call","principal":"u-1","principal_kind":"user",'
        '"email":"alice@example.com","client_id":"client-9","service":"db","tool":"query",'
        '"outcome":"ok","duration_ms":1.5,"rule":null,"arguments_sha256":null,"credential":null}'
    )


def _fields(event: AuditEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in AuditEvent.__dataclass_fields__}


def test_events_are_appended_to_the_file_one_json_object_a_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"earlier":true}\n')
    secret = {"password": "hunter2"}

    with AuditLog.from_config(AuditConfig(file=str(path))) as log:
        log.record(
            AuditEvent.of(
                ALICE,
                event="tool_call",
                service="db",
                outcome="ok",
                tool="query",
                arguments_sha256=arguments_sha256(secret),
            )
        )
        log.record(
            AuditEvent.of(ALICE, event="denied", service="db", outcome="denied", rule="mcpServers.db.policy")
        )

    text = path.read_text()
    assert "hunter2" not in text
    earlier, call, denial = (json.loads(line) for line in text.splitlines())
    assert earlier == {"earlier": True}
    assert call["arguments_sha256"] == hashlib.sha256(b'{"password":"hunter2"}').hexdigest()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", call["time"])
    assert (denial["event"], denial["outcome"], denial["rule"]) == (
        "denied",
        "denied",
        "mcpServers.db.policy",
    )


def test_each_event_is_on_disk_before_record_returns(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.record(AuditEvent.of(ALICE, event="tool_call", service="db", outcome="ok"))

        assert json.loads(path.read_text())["service"] == "db"


def test_without_a_file_events_go_to_the_audit_logger(caplog: pytest.LogCaptureFixture) -> None:
    log = AuditLog.from_config(None)

    with caplog.at_level(logging.INFO, logger="mcp_front.audit"):
        log.record(AuditEvent.of(ALICE, event="tool_call", service="db", outcome="tool_error", tool="x"))

    [record] = [r for r in caplog.records if r.name == "mcp_front.audit"]
    assert record.levelno == logging.INFO
    assert json.loads(record.getMessage())["outcome"] == "tool_error"


def test_a_file_that_cannot_be_opened_fails_at_open_naming_the_setting(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "missing" / "audit.jsonl")

    with pytest.raises(AuditLogError, match=r"^proxy\.audit\.file: cannot append to .*audit\.jsonl"):
        log.open()


def test_a_failing_sink_is_logged_and_does_not_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.open()
    path.unlink()
    (tmp_path / "audit.jsonl").mkdir()
    log.close()  # the next write reopens the path, which is now a directory

    with caplog.at_level(logging.WARNING, logger="mcp_front.audit_sink"):
        log.record(AuditEvent.of(ALICE, event="tool_call", service="db", outcome="ok"))
        log.record(AuditEvent.of(ALICE, event="tool_call", service="db", outcome="ok"))

    failures = [r for r in caplog.records if r.name == "mcp_front.audit_sink"]
    assert len(failures) == 1, "repeated failures are reported once a minute, not per event"
    assert "tool_call for service db not written (1 dropped so far)" in failures[0].getMessage()


async def test_the_gateway_refuses_to_start_when_the_audit_file_cannot_be_opened(tmp_path: Path) -> None:
    from mcp_front import Gateway, GatewayConfig, GatewayError

    # The directory exists, so the configuration is valid; the path itself is not a file.
    gateway = Gateway(GatewayConfig.model_validate({"proxy": {"audit": {"file": str(tmp_path)}}}))

    with pytest.raises(GatewayError, match=r"^proxy\.audit\.file: cannot append to "):
        async with gateway.run():
            pass


def test_a_line_separator_in_a_tool_name_cannot_split_the_line() -> None:
    line = AuditEvent.of(
        ALICE, event="denied", service="db", outcome="denied", tool="a\u2028b\u0085c"
    ).to_json()
    assert len(line.splitlines()) == 1
    assert line.isascii()

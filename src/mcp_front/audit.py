"""The audit log: one JSON object per tool call and per refusal, to a file or a logger.

An event says who did what to which service, and how it ended; it never holds a tool's
arguments or a token. The arguments are represented by the SHA-256 of their canonical
JSON (keys sorted, no spaces, UTF-8), so an investigator holding the suspected arguments
can confirm a call without the log being a copy of everything users sent.

Writing is synchronous, one short append and flush per event: cheaper and more
predictable than handing lines to a thread, and an event is on disk before the response
it describes reaches the client. A sink that fails is reported and the call goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Literal, TypeAlias

from mcp_front.auth.principal import Principal
from mcp_front.config import AuditConfig
from mcp_front.errors import MCPFrontError

AuditEventKind: TypeAlias = Literal["tool_call", "denied"]
AuditOutcome: TypeAlias = Literal["ok", "tool_error", "error", "denied", "cancelled"]

EVENTS_LOGGER: Final = "mcp_front.audit"
# Failures go elsewhere so that whoever routes `mcp_front.audit` to storage gets only events.
failures = logging.getLogger("mcp_front.audit_sink")

_FAILURE_REPORT_INTERVAL: Final = 60.0


def arguments_sha256(arguments: Any) -> str:
    """The SHA-256, in hex, of `arguments` as canonical JSON: keys sorted, no spaces, UTF-8."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One line of the audit log; fields that do not apply are `null`, so every line has
    the same keys."""

    event: AuditEventKind
    service: str
    outcome: AuditOutcome
    principal: str
    """The principal's subject."""
    principal_kind: str = "user"
    """"user" (signed in), "service" (a `serviceAuths` credential) or "anonymous": a
    credential's name and a user's subject may be equal strings."""
    email: str | None = None
    client_id: str | None = None
    tool: str | None = None
    duration_ms: float | None = None
    rule: str | None = None
    """For denials: the key path of the rule that refused."""
    arguments_sha256: str | None = None
    credential: str | None = None
    """For a call to a service that takes users' own credentials: "own", or "shared" when
    the organisation's fallback credential stood in for the user's."""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def of(
        cls,
        principal: Principal,
        *,
        event: AuditEventKind,
        service: str,
        outcome: AuditOutcome,
        tool: str | None = None,
        duration_ms: float | None = None,
        rule: str | None = None,
        arguments_sha256: str | None = None,
        credential: str | None = None,
    ) -> AuditEvent:
        return cls(
            event=event,
            service=service,
            outcome=outcome,
            principal=principal.subject,
            principal_kind=principal.kind,
            email=principal.email,
            client_id=principal.client_id,
            tool=tool,
            duration_ms=duration_ms,
            rule=rule,
            arguments_sha256=arguments_sha256,
            credential=credential,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": _rfc3339(self.time),
            "event": self.event,
            "principal": self.principal,
            "principal_kind": self.principal_kind,
            "email": self.email,
            "client_id": self.client_id,
            "service": self.service,
            "tool": self.tool,
            "outcome": self.outcome,
            "duration_ms": self.duration_ms,
            "rule": self.rule,
            "arguments_sha256": self.arguments_sha256,
            "credential": self.credential,
        }

    def to_json(self) -> str:
        # ASCII only: U+2028 and friends in a client-chosen tool name would otherwise split
        # the line for many JSON-lines readers.
        return json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=True)


class AuditLogError(MCPFrontError):
    """The audit file cannot be opened; the message names the setting and the fix."""


class AuditLog:
    """Where audit events go: appended to `file` as JSON lines, or logged to `mcp_front.audit`.

    Use it as a context manager, or call `open()` and `close()`. The file is opened once, in
    append mode, so rotating it means moving it aside and restarting the gateway.
    """

    def __init__(
        self,
        file: str | os.PathLike[str] | None = None,
        *,
        logger: logging.Logger | None = None,
        setting: str = "proxy.audit.file",
    ) -> None:
        """`setting` names where `file` came from, for the error when it cannot be opened."""
        self.file = Path(file) if file is not None else None
        self._logger = logger or logging.getLogger(EVENTS_LOGGER)
        self._setting = setting
        self._stream: IO[str] | None = None
        self._dropped = 0
        self._last_failure_report = -_FAILURE_REPORT_INTERVAL

    @classmethod
    def from_config(cls, config: AuditConfig | None) -> AuditLog:
        return cls(config.file if config is not None else None)

    def open(self) -> None:
        """Open the file now, so a path that cannot be written to fails at start-up."""
        if self.file is None or self._stream is not None:
            return
        try:
            self._stream = self.file.open("a", encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise AuditLogError(
                f"{self._setting}: cannot append to {self.file}: {reason}; "
                "make the file writable by the gateway, or choose another path"
            ) from exc

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError as exc:
                failures.error("closing the audit log %s failed: %s", self.file, exc)

    def __enter__(self) -> AuditLog:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def record(self, event: AuditEvent) -> None:
        """Write `event`; never raises, so a full disk does not fail the call it describes."""
        try:
            line = event.to_json()
            if self.file is None:
                self._logger.info(line)
                return
            if self._stream is None:
                self.open()
            assert self._stream is not None
            self._stream.write(line + "\n")
            self._stream.flush()
        # Whatever goes wrong here, the call this event describes must go on.
        except Exception as exc:
            self._report_failure(event, exc)
        else:
            self._report_recovery()

    def _report_failure(self, event: AuditEvent, exc: Exception) -> None:
        self._dropped += 1
        now = time.monotonic()
        # A broken disk fails every event: say so at most once a minute, with the count.
        if now - self._last_failure_report >= _FAILURE_REPORT_INTERVAL:
            self._last_failure_report = now
            failures.error(
                "audit event %s for service %s not written (%d dropped so far): %s",
                event.event,
                event.service,
                self._dropped,
                exc,
            )

    def _report_recovery(self) -> None:
        if self._dropped:
            failures.warning("audit log writable again after %d dropped event(s)", self._dropped)
            self._dropped = 0
            self._last_failure_report = -_FAILURE_REPORT_INTERVAL

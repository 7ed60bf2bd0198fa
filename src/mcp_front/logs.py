"""Log set-up and the one-line-per-request access log."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_front.auth.principal import Principal
from mcp_front.text import escaped

LogFormat = Literal["text", "json"]

_CONTEXT_FIELDS = ("service", "principal", "pid", "method", "path", "status", "duration_ms", "client")
access_logger = logging.getLogger("mcp_front.access")


class TextFormatter(logging.Formatter):
    """Plain lines, with every control or bidirectional character of a message escaped:
    a value from a client can never end a line and start a forged one."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escaped(record.message, limit=None)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        # A traceback's lines stay lines; what an exception quotes of a request is escaped.
        text = super().formatException(ei)
        return "\n".join(escaped(line, limit=None) for line in text.splitlines())


class JSONFormatter(logging.Formatter):
    """One JSON object per line, with the context fields the gateway attaches."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # ASCII only: control and bidirectional characters of a message are escaped too.
        return json.dumps(entry, default=str, ensure_ascii=True)


def configure_logging(level: str = "info", fmt: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The gateway writes its own access log; uvicorn's would repeat each line.
    logging.getLogger("uvicorn.access").disabled = True
    # One line per backend request would double the log for nothing the gateway's own
    # lines do not say; the client's failures still reach the log as warnings.
    for name in ("httpx2", "httpcore2"):
        logging.getLogger(name).setLevel(logging.WARNING)


class AccessLogMiddleware:
    """Logs each HTTP request once it ends: method, path, service, principal, status, duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._log(scope, status, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, status: int, elapsed: float) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        principal = scope.get("user")
        who = escaped(principal.display_name) if isinstance(principal, Principal) else "-"
        service = scope.get("mcp_front.service", "-")
        path = escaped(scope.get("path", ""))
        duration_ms = round(elapsed * 1000, 2)
        access_logger.info(
            "%s %s %d %.2fms service=%s principal=%s",
            scope.get("method"),
            path,
            status,
            duration_ms,
            service,
            who,
            extra={
                "method": scope.get("method"),
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "service": service,
                "principal": who,
            },
        )
